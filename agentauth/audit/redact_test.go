package audit

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	cases := []struct {
		name, in, want string
		names          []string
	}{
		{"top level", `{"user":"a","password":"x"}`, `{"user":"a","password":"[redacted]"}`, []string{"password"}},
		{"any case", `{"PassWord":"x"}`, `{"PassWord":"[redacted]"}`, []string{"password"}},
		{"nested object value", `{"auth":{"token":{"a":[1,2]}},"k":1}`, `{"auth":{"token":"[redacted]"},"k":1}`, []string{"token"}},
		{"inside arrays", `[{"token":"t"},{"x":[{"Token":1}]}]`, `[{"token":"[redacted]"},{"x":[{"Token":"[redacted]"}]}]`, []string{"token"}},
		{"value equal to a name", `{"a":"password"}`, `{"a":"password"}`, []string{"password"}},
		{"escaped name", `{"pass\u0077ord":"x"}`, `{"password":"[redacted]"}`, []string{"password"}},
		{"numbers kept exact", `{"n":9007199254740993,"e":1.0e+2}`, `{"n":9007199254740993,"e":1.0e+2}`, []string{"x"}},
		{"no names", `{"a":1}`, `{"a":1}`, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Redact([]byte(c.in), c.names)
			if err != nil {
				t.Fatalf("Redact: %v", err)
			}
			if string(got) != c.want {
				t.Errorf("got %s, want %s", got, c.want)
			}
		})
	}
}

func TestRedactRejectsHostileInput(t *testing.T) {
	cases := map[string]string{
		"duplicate names": `{"password":"[redacted]","password":"secret"}`,
		"invalid json":    `{"password":`,
		"trailing data":   `{"a":1} {"password":"x"}`,
		"invalid utf-8":   "{\"a\":\"\xff\"}",
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			if got, err := Redact([]byte(in), []string{"password"}); err == nil {
				t.Errorf("Redact(%q) = %s, want an error", in, got)
			}
		})
	}
}

func TestRecordArgumentsRedacted(t *testing.T) {
	l := openTest(t, WithRecordArguments("password", "api_key"))
	raw := `{"user":"alice","password":"hunter2","opts":{"API_KEY":"k-123","depth":[{"password":"p"}]},"n":9007199254740993}`
	rec := decisionRecord(1)
	rec.Arguments = json.RawMessage(raw)
	if _, err := l.Append(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	recs, err := l.Query(context.Background(), Filter{})
	if err != nil || len(recs) != 1 {
		t.Fatalf("Query = %d, %v", len(recs), err)
	}
	got := string(recs[0].Arguments)
	want := `{"user":"alice","password":"[redacted]","opts":{"API_KEY":"[redacted]","depth":[{"password":"[redacted]"}]},"n":9007199254740993}`
	if got != want {
		t.Errorf("arguments = %s, want %s", got, want)
	}
	if recs[0].ArgumentsDigest != DigestArguments([]byte(raw)) {
		t.Error("digest is not over the exact raw arguments")
	}
	for _, secret := range []string{"hunter2", "k-123"} {
		var export strings.Builder
		if _, err := l.Export(context.Background(), &export, Filter{}); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(export.String(), secret) {
			t.Errorf("export holds the redacted value %q", secret)
		}
	}
}

func TestRecordArgumentsOmitted(t *testing.T) {
	l := openTest(t, WithRecordArguments("password"))
	cases := []struct {
		name, args, want string
	}{
		{"invalid json", `{"password":`, ArgumentsInvalidJSON},
		{"duplicate names", `{"password":"a","password":"b"}`, ArgumentsInvalidJSON},
		{"too large", `{"a":"` + strings.Repeat("x", MaxArgumentsSize) + `"}`, ArgumentsTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := decisionRecord(1)
			rec.Arguments = json.RawMessage(c.args)
			seq, err := l.Append(context.Background(), rec)
			if err != nil {
				t.Fatal(err)
			}
			recs, err := l.Query(context.Background(), Filter{AfterSeq: seq - 1, Limit: 1})
			if err != nil || len(recs) != 1 {
				t.Fatalf("Query = %d, %v", len(recs), err)
			}
			r := recs[0]
			if r.ArgumentsOmitted != c.want || r.Arguments != nil {
				t.Errorf("omitted = %q, arguments = %s; want %q and none", r.ArgumentsOmitted, r.Arguments, c.want)
			}
			if r.ArgumentsDigest != DigestArguments([]byte(c.args)) {
				t.Error("digest missing for omitted arguments")
			}
		})
	}
}
