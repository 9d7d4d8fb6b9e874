package envelope

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func call(arguments string) string {
	return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fs__read","arguments":` + arguments + `}}`
}

func TestArgumentNamesDifferingOnlyInCase(t *testing.T) {
	rejected := map[string]string{
		"upper case":        call(`{"path":"/allowed/a.txt","PATH":"/etc/hostname"}`),
		"mixed case":        call(`{"Path":"/etc/hostname","path":"/allowed/a.txt"}`),
		"kelvin sign":       call(`{"kind":"safe","\u212aind":"danger"}`),
		"long s":            call(`{"size":1,"\u017fize":2}`),
		"escaped upper":     call(`{"path":"a","\u0050ATH":"b"}`),
		"nested object":     call(`{"opts":{"follow":false,"FOLLOW":true}}`),
		"object in array":   call(`{"files":[{"p":"a"},{"name":"x","NAME":"y"}]}`),
		"deep":              call(`{"a":[[{"b":{"c":{"mode":"r","Mode":"w"}}}]]}`),
		"non-ASCII letters": call(`{"straße":1,"STRAßE":2}`),
		"greek sigma":       call(`{"σ":1,"Σ":2}`),
		"many names":        call(manyNames(40, "Name7")),
		"prompt arguments":  `{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"p","arguments":{"topic":"a","Topic":"b"}}}`,
		"prompt kelvin":     `{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"p","arguments":{"k":"a","\u212a":"b"}}}`,
	}
	for name, body := range rejected {
		t.Run(name, func(t *testing.T) {
			_, err := Decode([]byte(body), DefaultLimits())
			e, ok := err.(*Error)
			if !ok || e.Kind != KindCaseVariant || e.Code() != CodeInvalidRequest {
				t.Fatalf("Decode = %v, want a %s error with code %d", err, KindCaseVariant, CodeInvalidRequest)
			}
			if !strings.Contains(e.Message, "params.arguments") || strings.Count(e.Message, `"`) < 4 {
				t.Errorf("message %q does not name params.arguments and both names", e.Message)
			}
		})
	}
}

func TestArgumentNamesThatFoldApartAreAccepted(t *testing.T) {
	accepted := map[string]string{
		"same name in sibling objects": call(`{"a":{"path":"x"},"b":{"PATH":"y"}}`),
		"same name at two depths":      call(`{"path":"x","o":{"PATH":"y"}}`),
		"objects in an array":          call(`[{"k":1},{"K":2}]`),
		"values differing in case":     call(`{"a":"path","b":"PATH"}`),
		"dotted I is its own fold":     call(`{"i":1,"İ":2}`),
		"underscore and dash differ":   call(`{"file_path":1,"file-path":2,"filepath":3}`),
		"many distinct names":          call(manyNames(200, "")),
		"completion value":             `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"p"},"argument":{"name":"a","value":"{\"x\":1,\"X\":2}"}}}`,
	}
	for name, body := range accepted {
		t.Run(name, func(t *testing.T) {
			_, err := Decode([]byte(body), DefaultLimits())
			if name == "objects in an array" {
				// arguments must be an object; the array is refused for that.
				if e, ok := err.(*Error); !ok || e.Kind != KindInvalidField {
					t.Fatalf("Decode = %v, want %s", err, KindInvalidField)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode = %v", err)
			}
		})
	}
}

func TestCaseVariantMessageIsBounded(t *testing.T) {
	long := strings.Repeat("x", 10_000)
	_, err := Decode([]byte(call(`{"`+long+`":1,"`+strings.ToUpper(long)+`":2}`)), DefaultLimits())
	if err == nil || len(err.Error()) > 400 {
		t.Fatalf("Decode error of %d bytes: %.200v", len(fmt.Sprint(err)), err)
	}
}

// TestFoldingMatchesEncodingJSON checks the rejected pairs against what
// encoding/json does: a struct field tagged with the first name receives
// the value sent under the second.
func TestFoldingMatchesEncodingJSON(t *testing.T) {
	pairs := [][2]string{{"path", "PATH"}, {"kind", "\u212aind"}, {"size", "\u017fize"}, {"σ", "ς"}, {"µ", "Μ"}}
	for _, p := range pairs {
		typ := reflect.StructOf([]reflect.StructField{{
			Name: "F", Type: reflect.TypeFor[string](), Tag: reflect.StructTag(fmt.Sprintf(`json:%q`, p[0])),
		}})
		v := reflect.New(typ)
		if err := json.Unmarshal(fmt.Appendf(nil, `{%q:"second"}`, p[1]), v.Interface()); err != nil {
			t.Fatal(err)
		}
		if got := v.Elem().Field(0).String(); got != "second" {
			t.Fatalf("encoding/json does not match %q to field %q (got %q); fix the test", p[1], p[0], got)
		}
		if err := checkFoldedNames(fmt.Appendf(nil, `{%q:1,%q:2}`, p[0], p[1]), "t"); err == nil {
			t.Errorf("%q and %q accepted", p[0], p[1])
		}
	}
}

func manyNames(n int, extra string) string {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		fmt.Fprintf(&b, `"name%d":%d,`, i, i)
	}
	if extra != "" {
		fmt.Fprintf(&b, `%q:0,`, extra)
	}
	b.WriteString(`"end":0}`)
	return b.String()
}

func FuzzFoldedNames(f *testing.F) {
	f.Add("path", "PATH")
	f.Add("kind", "\u212aind")
	f.Add("a", "b")
	f.Add("ǅ", "ǆ")
	f.Fuzz(func(t *testing.T, a, b string) {
		if a == b || !utf8.ValidString(a) || !utf8.ValidString(b) {
			return
		}
		names, _ := json.Marshal(map[string]int{a: 1})
		other, _ := json.Marshal(b)
		obj := string(names[:len(names)-1]) + "," + string(other) + ":2}"
		err := checkFoldedNames(json.RawMessage(obj), "t")
		if (err != nil) != strings.EqualFold(a, b) {
			t.Fatalf("names %q and %q: error %v, EqualFold %v", a, b, err, strings.EqualFold(a, b))
		}
	})
}

func TestErrorNamesTheMethodOnceKnown(t *testing.T) {
	_, err := Decode([]byte(call(`{"path":"a","PATH":"b"}`)), DefaultLimits())
	if e, ok := err.(*Error); !ok || e.Method != "tools/call" {
		t.Fatalf("Decode = %#v, want an error naming tools/call", err)
	}
	_, err = Decode([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","x":1}`), DefaultLimits())
	if e, ok := err.(*Error); !ok || e.Method != "" {
		t.Fatalf("Decode = %#v, want no method before the message is read", err)
	}
}

// BenchmarkDecodeManyArgumentNames decodes a tools/call whose arguments
// object has 10,000 distinct names, the case checkSorted keeps at O(n log n).
func BenchmarkDecodeManyArgumentNames(b *testing.B) {
	body := []byte(call(manyNames(10_000, "")))
	limits := DefaultLimits()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := Decode(body, limits); err != nil {
			b.Fatal(err)
		}
	}
}
