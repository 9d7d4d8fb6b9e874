package policy

import (
	"errors"
	"strings"
	"testing"
)

func TestDecodeArgumentsNumbers(t *testing.T) {
	tests := []struct {
		in   string
		want any
	}{
		{`9007199254740993`, int64(9007199254740993)},
		{`9007199254740992`, int64(9007199254740992)},
		{`-9223372036854775808`, int64(-9223372036854775808)},
		{`18446744073709551615`, uint64(18446744073709551615)},
		{`18446744073709551616`, "18446744073709551616"},
		{`0.5`, 0.5},
		{`1e3`, 1000.0},
		{`-0.0`, 0.0},
		{`0.1`, "0.1"},
		{`1e400`, "1e400"},
		{`1e-400`, "1e-400"},
		{`9007199254740993.0`, "9007199254740993.0"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := DecodeArguments([]byte(`{"n":` + tt.in + `}`))
			if err != nil {
				t.Fatal(err)
			}
			if n := got.(map[string]any)["n"]; n != tt.want {
				t.Errorf("decoded %s as %#v, want %#v", tt.in, n, tt.want)
			}
		})
	}
}

func TestDecodeArgumentsRejects(t *testing.T) {
	deep := strings.Repeat(`{"a":`, MaxArgumentDepth+1) + "1" + strings.Repeat("}", MaxArgumentDepth+1)
	big := `{"a":"` + strings.Repeat("x", MaxArgumentBytes) + `"}`
	tests := map[string]string{
		"duplicate key":  `{"path":"/ok","path":"/etc"}`,
		"invalid utf-8":  "{\"a\":\"\xff\"}",
		"trailing data":  `{"a":1} {"b":2}`,
		"truncated":      `{"a":[1,2`,
		"bare word":      `{"a":nope}`,
		"too deep":       deep,
		"too big":        big,
		"unquoted key":   `{a:1}`,
		"trailing comma": `{"a":1,}`,
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := DecodeArguments([]byte(in)); !errors.Is(err, ErrArguments) {
				t.Errorf("error = %v, want ErrArguments", err)
			}
		})
	}
}

func TestDecodeArgumentsShapes(t *testing.T) {
	got, err := DecodeArguments([]byte(`{"s":"x","b":true,"n":null,"l":[1,"a",[]],"o":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	m := got.(map[string]any)
	if m["s"] != "x" || m["b"] != true || m["n"] != nil {
		t.Errorf("scalars = %#v", m)
	}
	if l := m["l"].([]any); len(l) != 3 || l[0] != int64(1) || l[1] != "a" {
		t.Errorf("list = %#v", l)
	}
	if empty, err := DecodeArguments(nil); err != nil || len(empty.(map[string]any)) != 0 {
		t.Errorf("empty input = %#v, %v", empty, err)
	}
}

func TestIntegerNeighboursDiffer(t *testing.T) {
	c, err := compileCondition(`args.n == 9007199254740992`, Position{File: "t"}, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := c.Eval(&Call{Arguments: []byte(`{"n":9007199254740993}`)})
	if err != nil || ok {
		t.Errorf("2^53+1 == 2^53 evaluated to %v, %v; want false", ok, err)
	}
	ok, err = c.Eval(&Call{Arguments: []byte(`{"n":9007199254740992}`)})
	if err != nil || !ok {
		t.Errorf("2^53 == 2^53 evaluated to %v, %v; want true", ok, err)
	}
}

func FuzzDecodeArguments(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, `{"a":[1,2.5,"x",null,true]}`, `{"a":9007199254740993}`,
		`{"a":1e400}`, `[`, `{"a":{"b":{"c":{}}}}`, `{"a":"\u0000"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		v, err := DecodeArguments(raw)
		if err != nil {
			if !errors.Is(err, ErrArguments) {
				t.Fatalf("error %v does not wrap ErrArguments", err)
			}
			return
		}
		checkValue(t, v, 0)
	})
}

// checkValue asserts a decoded value holds only the documented types.
func checkValue(t *testing.T, v any, depth int) {
	if depth > MaxArgumentDepth+1 {
		t.Fatalf("decoded value nested %d deep", depth)
	}
	switch x := v.(type) {
	case nil, bool, string, int64, uint64, float64:
	case []any:
		for _, e := range x {
			checkValue(t, e, depth+1)
		}
	case map[string]any:
		for _, e := range x {
			checkValue(t, e, depth+1)
		}
	default:
		t.Fatalf("decoded value of type %T", v)
	}
}
