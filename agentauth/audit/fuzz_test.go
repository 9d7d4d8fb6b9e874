package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

func seedExportLines(f *testing.F) {
	l := openTest(f, WithRecordArguments("password"))
	rec := decisionRecord(1)
	rec.Arguments = json.RawMessage(`{"password":"x","list":[1,2.5e3,{"a":null}]}`)
	rec.Latency = 1234567
	if _, err := l.Append(context.Background(), rec); err != nil {
		f.Fatal(err)
	}
	if _, err := l.Append(context.Background(), Record{Kind: KindRevocation, RunID: "R1", ActorSubject: "admin"}); err != nil {
		f.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := l.Export(context.Background(), &buf, Filter{}); err != nil {
		f.Fatal(err)
	}
	for _, line := range bytes.Split(buf.Bytes(), []byte("\n")) {
		f.Add(line)
	}
	f.Add([]byte(`{"seq":1,"prev":"` + GenesisHash + `","time":"2026-01-01T00:00:00+01:00","kind":"decision","hash":"` + GenesisHash + `"}`))
	f.Add([]byte(`{"seq":1,"seq":2}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"seq":18446744073709551616}`))
}

// FuzzParseRecord checks that any line ParseRecord accepts encodes back
// to a line it accepts as the same record.
func FuzzParseRecord(f *testing.F) {
	seedExportLines(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := ParseRecord(data)
		if err != nil {
			return
		}
		again, err := json.Marshal(rec)
		if err != nil {
			t.Fatalf("accepted record does not encode: %v", err)
		}
		rec2, err := ParseRecord(again)
		if err != nil {
			t.Fatalf("re-encoded record %s is rejected: %v", again, err)
		}
		if !reflect.DeepEqual(rec, rec2) {
			t.Fatalf("round trip changed the record:\n%+v\n%+v", rec, rec2)
		}
	})
}

// FuzzVerifyExport feeds arbitrary exports to the verifier, which must
// report problems rather than fail in any other way.
func FuzzVerifyExport(f *testing.F) {
	seedExportLines(f)
	f.Add([]byte("\n\n{\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := VerifyExport(bytes.NewReader(data))
		if err == nil && !rep.OK() {
			t.Fatal("problems without an error")
		}
		if err != nil && rep.OK() && !strings.Contains(err.Error(), "read export") {
			t.Fatalf("error without problems: %v", err)
		}
	})
}

// FuzzRedact checks that redacted output is valid JSON in which every
// member with a redacted name holds only the placeholder.
func FuzzRedact(f *testing.F) {
	f.Add([]byte(`{"password":"x","a":[{"Password":{"b":1}}]}`), "password")
	f.Add([]byte(`{"a":"password"}`), "password")
	f.Add([]byte(`[1,2,{"k":"v"}]`), "k")
	f.Add([]byte(`{"p\u0061ss":1}`), "pass")
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		out, err := Redact(data, []string{name})
		if err != nil {
			return
		}
		if !jsontext.Value(out).IsValid() {
			t.Fatalf("output %q is not valid JSON", out)
		}
		checkRedacted(t, out, name)
	})
}

func checkRedacted(t *testing.T, out []byte, name string) {
	dec := jsontext.NewDecoder(bytes.NewReader(out))
	for {
		tok, err := dec.ReadToken()
		if err != nil {
			return
		}
		if !isMemberName(dec, tok) || !strings.EqualFold(tok.String(), name) {
			continue
		}
		v, err := dec.ReadValue()
		if err != nil {
			t.Fatal(err)
		}
		if string(v) != `"`+Redacted+`"` {
			t.Fatalf("member %q kept value %s in %s", tok.String(), v, out)
		}
	}
}
