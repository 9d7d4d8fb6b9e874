package envelope

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func FuzzDecode(f *testing.F) {
	f.Add([]byte(typicalCall))
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","Name":"b"}}`))
	f.Add([]byte(`{"jsonrpc":"2.0","id":"x","method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"p"},"argument":{"name":"a","value":"v"}}}`))
	f.Add([]byte(`[{"jsonrpc":"2.0"}]`))
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"result":{"a":[1,{"b":2}]}}`))
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"o":[{"k":1,"\u212a":2}]}}}`))

	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := Decode(body, Limits{MaxBytes: 1 << 16, MaxDepth: 32})
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		// What Decode accepts, encoding/json reads the same way, and
		// Encode writes a message that decodes to the same fields.
		var loose struct {
			Method string          `json:"method"`
			ID     json.RawMessage `json:"id"`
			Params struct {
				// Name and URI stay raw because methods that do not
				// use them accept any JSON value there.
				Name      json.RawMessage `json:"name"`
				URI       json.RawMessage `json:"uri"`
				Arguments json.RawMessage `json:"arguments"`
			} `json:"params"`
		}
		if err := json.Unmarshal(body, &loose); err != nil {
			t.Fatalf("encoding/json rejects an accepted body: %v", err)
		}
		if loose.Method != m.Method || string(loose.ID) != string(m.ID) {
			t.Fatalf("encoding/json reads method %q id %s, Decode %q %s", loose.Method, loose.ID, m.Method, m.ID)
		}
		if m.Name != "" && unquote(loose.Params.Name) != m.Name {
			t.Fatalf("encoding/json reads name %q, Decode %q", loose.Params.Name, m.Name)
		}
		if m.URI != "" && unquote(loose.Params.URI) != m.URI {
			t.Fatalf("encoding/json reads uri %q, Decode %q", loose.Params.URI, m.URI)
		}
		if m.Arguments != nil && string(loose.Params.Arguments) != string(m.Arguments) {
			t.Fatalf("encoding/json reads arguments %s, Decode %s", loose.Params.Arguments, m.Arguments)
		}
		if a, b, ok := caseVariantPair(m.Arguments); ok {
			t.Fatalf("accepted arguments holding names %q and %q, which fold together", a, b)
		}
		out, err := m.Encode()
		if err != nil {
			t.Fatalf("Encode of an accepted body: %v", err)
		}
		again, err := Decode(out, Limits{MaxBytes: 1 << 20, MaxDepth: 32})
		if err != nil {
			t.Fatalf("Decode(Encode()) = %v for %s", err, out)
		}
		if again.Name != m.Name || again.URI != m.URI || string(again.Arguments) != string(m.Arguments) {
			t.Fatalf("Encode changed fields: %s", out)
		}
	})
}

func unquote(raw json.RawMessage) string {
	var s string
	_ = json.Unmarshal(raw, &s)
	return s
}

// caseVariantPair finds, by a walk independent of the decoder's, two
// names of one object in raw that strings.EqualFold reports equal.
func caseVariantPair(raw json.RawMessage) (string, string, bool) {
	if len(raw) == 0 {
		return "", "", false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	type frame struct {
		object bool
		names  []string
		atName bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", "", false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if s, ok := tok.(string); ok && top != nil && top.object && top.atName {
			for _, n := range top.names {
				if strings.EqualFold(n, s) {
					return n, s, true
				}
			}
			top.names, top.atName = append(top.names, s), false
			continue
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			stack = append(stack, &frame{object: tok == json.Delim('{'), atName: true})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return "", "", false
			}
		}
		if top := stack[len(stack)-1]; top.object {
			top.atName = true
		}
	}
}

func BenchmarkDecodeToolsCall(b *testing.B) {
	body := []byte(typicalCall)
	limits := DefaultLimits()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := Decode(body, limits); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeToolsCall(b *testing.B) {
	m, err := Decode([]byte(typicalCall), DefaultLimits())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}
