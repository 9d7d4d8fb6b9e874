package envelope

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const typicalCall = `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"files__read",` +
	`"arguments":{"path":"/srv/data/report.csv","limit":9007199254740993,"opts":{"follow":false}},` +
	`"_meta":{"progressToken":"p-1","traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}}`

func decode(t *testing.T, body string) *Message {
	t.Helper()
	m, err := Decode([]byte(body), DefaultLimits())
	if err != nil {
		t.Fatalf("Decode(%s) error: %v", body, err)
	}
	return m
}

func TestDecodeToolsCall(t *testing.T) {
	m := decode(t, typicalCall)
	if m.Type != Request {
		t.Errorf("Type = %v, want Request", m.Type)
	}
	if string(m.ID) != "7" {
		t.Errorf("ID = %s, want 7", m.ID)
	}
	if m.Name != "files__read" {
		t.Errorf("Name = %q", m.Name)
	}
	want := `{"path":"/srv/data/report.csv","limit":9007199254740993,"opts":{"follow":false}}`
	if string(m.Arguments) != want {
		t.Errorf("Arguments = %s, want %s", m.Arguments, want)
	}
	if string(m.Meta.ProgressToken) != `"p-1"` {
		t.Errorf("ProgressToken = %s", m.Meta.ProgressToken)
	}
	if !strings.HasPrefix(m.Meta.Traceparent, "00-4bf92f") {
		t.Errorf("Traceparent = %q", m.Meta.Traceparent)
	}
}

func TestDecodeBigIntegersStayExact(t *testing.T) {
	m := decode(t, `{"jsonrpc":"2.0","id":9007199254740993,"method":"tools/call",`+
		`"params":{"name":"n","arguments":{"x":9007199254740993,"y":-12345678901234567890}}}`)
	if string(m.ID) != "9007199254740993" {
		t.Errorf("ID = %s", m.ID)
	}
	if string(m.Arguments) != `{"x":9007199254740993,"y":-12345678901234567890}` {
		t.Errorf("Arguments = %s", m.Arguments)
	}
}

func TestDecodeMethods(t *testing.T) {
	m := decode(t, `{"jsonrpc":"2.0","id":"a","method":"resources/read","params":{"uri":"file:///x"}}`)
	if m.URI != "file:///x" {
		t.Errorf("resources/read URI = %q", m.URI)
	}
	m = decode(t, `{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"p","arguments":{"a":"b"}}}`)
	if m.Name != "p" || string(m.Arguments) != `{"a":"b"}` {
		t.Errorf("prompts/get = %q %s", m.Name, m.Arguments)
	}
	m = decode(t, `{"jsonrpc":"2.0","id":1,"method":"completion/complete",`+
		`"params":{"ref":{"type":"ref/prompt","name":"p"},"argument":{"name":"a","value":"v"}}}`)
	if m.Ref.Type != "ref/prompt" || m.Ref.Name != "p" || m.Argument.Name != "a" || m.Argument.Value != "v" {
		t.Errorf("completion/complete = %+v %+v", m.Ref, m.Argument)
	}
	m = decode(t, `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3}}`)
	if m.Type != Notification {
		t.Errorf("notification Type = %v", m.Type)
	}
	m = decode(t, `{"jsonrpc":"2.0","id":"s-1","result":{"roots":[]}}`)
	if m.Type != Response || string(m.Result) != `{"roots":[]}` {
		t.Errorf("response = %v %s", m.Type, m.Result)
	}
	m = decode(t, `{"jsonrpc":"2.0","id":4,"method":"tools/list"}`)
	if m.Params != nil {
		t.Errorf("tools/list Params = %s, want nil", m.Params)
	}
}

func TestDecodeRejects(t *testing.T) {
	deep := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"n","arguments":{"a":` +
		strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}}}`
	tests := []struct {
		name string
		body string
		kind Kind
	}{
		{"empty", ``, KindSyntax},
		{"not json", `hello`, KindSyntax},
		{"truncated", `{"jsonrpc":"2.0","id":1,`, KindSyntax},
		{"top-level string", `"x"`, KindNotObject},
		{"batch", `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, KindBatch},
		{"batch after space", " \n[]", KindBatch},
		{"trailing object", `{"jsonrpc":"2.0","id":1,"method":"ping"}{"jsonrpc":"2.0","id":2,"method":"ping"}`, KindTrailingData},
		{"trailing garbage", `{"jsonrpc":"2.0","id":1,"method":"ping"} x`, KindTrailingData},
		{"duplicate top level", `{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"ping"}`, KindDuplicateKey},
		{"duplicate in params", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"safe","name":"danger"}}`, KindDuplicateKey},
		{"duplicate in arguments", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"n","arguments":{"p":"/a","p":"/etc/passwd"}}}`, KindDuplicateKey},
		{"duplicate nested", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"n","arguments":{"o":[{"k":1,"k":2}]}}}`, KindDuplicateKey},
		{"duplicate by escape", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","n\u0061me":"b"}}`, KindDuplicateKey},
		{"case Method", `{"jsonrpc":"2.0","id":1,"method":"ping","Method":"tools/call"}`, KindCaseVariant},
		{"case Params", `{"jsonrpc":"2.0","id":1,"method":"tools/call","Params":{"name":"n"}}`, KindCaseVariant},
		{"case Name", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"safe","Name":"danger"}}`, KindCaseVariant},
		{"case ARGUMENTS", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"n","ARGUMENTS":{}}}`, KindCaseVariant},
		{"long s folds", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"n","argument\u017f":{}}}`, KindCaseVariant},
		{"kelvin folds", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"n","_meta":{"progressTo\u212aen":1}}}`, KindCaseVariant},
		{"case in ref", `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"p","Name":"q"},"argument":{"name":"a","value":""}}}`, KindCaseVariant},
		{"unknown member", `{"jsonrpc":"2.0","id":1,"method":"ping","extra":1}`, KindUnknownMember},
		{"invalid utf8", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"\xff\"}}", KindInvalidUTF8},
		{"lone surrogate escape", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"\ud800"}}`, KindSyntax},
		{"too deep", deep, KindTooDeep},
		{"version 1.0", `{"jsonrpc":"1.0","id":1,"method":"ping"}`, KindInvalidField},
		{"version number", `{"jsonrpc":2.0,"id":1,"method":"ping"}`, KindInvalidField},
		{"version missing", `{"id":1,"method":"ping"}`, KindMissingField},
		{"id float", `{"jsonrpc":"2.0","id":1.5,"method":"ping"}`, KindInvalidField},
		{"id exponent", `{"jsonrpc":"2.0","id":1e3,"method":"ping"}`, KindInvalidField},
		{"id object", `{"jsonrpc":"2.0","id":{},"method":"ping"}`, KindInvalidField},
		{"id null", `{"jsonrpc":"2.0","id":null,"method":"ping"}`, KindInvalidField},
		{"id bool", `{"jsonrpc":"2.0","id":true,"method":"ping"}`, KindInvalidField},
		{"method number", `{"jsonrpc":"2.0","id":1,"method":5}`, KindInvalidField},
		{"null params", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":null}`, KindInvalidField},
		{"array params", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["n"]}`, KindInvalidField},
		{"name missing", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}`, KindMissingField},
		{"params missing for call", `{"jsonrpc":"2.0","id":1,"method":"tools/call"}`, KindMissingField},
		{"name number", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":1}}`, KindInvalidField},
		{"arguments array", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"n","arguments":[1]}}`, KindInvalidField},
		{"arguments null", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"n","arguments":null}}`, KindInvalidField},
		{"prompt argument number", `{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"n","arguments":{"a":1}}}`, KindInvalidField},
		{"uri missing", `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{}}`, KindMissingField},
		{"meta array", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"n","_meta":[]}}`, KindInvalidField},
		{"progress token float", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"n","_meta":{"progressToken":1.5}}}`, KindInvalidField},
		{"traceparent number", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"n","_meta":{"traceparent":1}}}`, KindInvalidField},
		{"bad ref type", `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/tool","name":"p"},"argument":{"name":"a","value":""}}}`, KindInvalidField},
		{"response both", `{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"x"}}`, KindInvalidField},
		{"response neither", `{"jsonrpc":"2.0","id":1}`, KindInvalidField},
		{"method with result", `{"jsonrpc":"2.0","id":1,"method":"ping","result":{}}`, KindInvalidField},
		{"no method no id", `{"jsonrpc":"2.0","result":{}}`, KindMissingField},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Decode([]byte(tt.body), DefaultLimits())
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Decode = %+v, %v; want an *Error of kind %s", m, err, tt.kind)
			}
			if e.Kind != tt.kind {
				t.Errorf("kind = %s (%v), want %s", e.Kind, e, tt.kind)
			}
		})
	}
}

func TestDecodeTooLarge(t *testing.T) {
	body := []byte(typicalCall)
	_, err := Decode(body, Limits{MaxBytes: int64(len(body)) - 1, MaxDepth: 64})
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindTooLarge {
		t.Fatalf("err = %v, want too_large", err)
	}
	if _, err := Decode(body, Limits{MaxBytes: int64(len(body)), MaxDepth: 64}); err != nil {
		t.Fatalf("body at the limit: %v", err)
	}
}

func TestDecodeDepthIgnoresStrings(t *testing.T) {
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"n","arguments":{"s":"` +
		strings.Repeat("[{\\\"", 100) + `"}}}`
	if _, err := Decode([]byte(body), DefaultLimits()); err != nil {
		t.Fatalf("brackets inside a string counted as nesting: %v", err)
	}
}

func TestErrorCodes(t *testing.T) {
	cases := map[Kind]int{
		KindSyntax: CodeParseError, KindDuplicateKey: CodeParseError, KindInvalidUTF8: CodeParseError,
		KindCaseVariant: CodeInvalidRequest, KindBatch: CodeInvalidRequest, KindUnknownMember: CodeInvalidRequest,
	}
	for kind, want := range cases {
		if got := (&Error{Kind: kind}).Code(); got != want {
			t.Errorf("Code(%s) = %d, want %d", kind, got, want)
		}
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	bodies := []string{
		typicalCall,
		`{"jsonrpc":"2.0","id":"x","method":"resources/read","params":{"uri":"file:///a?b","_meta":{"k":[1,2]}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"file:///{p}"},"argument":{"name":"p","value":"a"},"context":{"arguments":{}}}}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","id":2,"error":{"code":-1,"message":"no"}}`,
	}
	for _, body := range bodies {
		m := decode(t, body)
		out, err := m.Encode()
		if err != nil {
			t.Fatalf("Encode(%s): %v", body, err)
		}
		again := decode(t, string(out))
		if again.Name != m.Name || again.URI != m.URI || string(again.Arguments) != string(m.Arguments) ||
			string(again.ID) != string(m.ID) || again.Method != m.Method {
			t.Errorf("round trip of %s gave %s", body, out)
		}
		var a, b any
		if err := json.Unmarshal([]byte(body), &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(out, &b); err != nil {
			t.Fatal(err)
		}
		if ja, jb := mustJSON(t, a), mustJSON(t, b); ja != jb {
			t.Errorf("Encode changed the message:\n in  %s\n out %s", ja, jb)
		}
	}
}

func TestEncodeUsesFields(t *testing.T) {
	m := decode(t, typicalCall)
	m.Arguments = json.RawMessage(`{"path":"/srv/data/other.csv"}`)
	m.Name = "files__stat"
	out, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	again := decode(t, string(out))
	if again.Name != "files__stat" || string(again.Arguments) != `{"path":"/srv/data/other.csv"}` {
		t.Errorf("Encode = %s; want the changed name and arguments", out)
	}
}

func TestEncodeRejectsInvalidRaw(t *testing.T) {
	m := decode(t, typicalCall)
	m.Arguments = json.RawMessage(`{"a":`)
	if _, err := m.Encode(); err == nil {
		t.Fatal("Encode accepted broken raw arguments")
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestEncodeRejectsInvalidUTF8Name(t *testing.T) {
	m := decode(t, typicalCall)
	m.Name = "files__\xff"
	if out, err := m.Encode(); err == nil {
		t.Fatalf("Encode wrote %s for a name with invalid UTF-8", out)
	}
}
