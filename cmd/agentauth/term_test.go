package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/agentauth/agentauth/agentauth/control/api"
)

func TestPrintable(t *testing.T) {
	cases := map[string]string{
		"plain text":      "plain text",
		"東京 café":         "東京 café",
		"a\x1b[31mb":      `a\x1b[31mb`,
		"row\nfake":       `row\nfake`,
		"col\tfake":       `col\tfake`,
		"cr\rover":        `cr\rover`,
		"c1\u009bx":       `c1\x9bx`,
		"bidi\u202eevil":  `bidi\u202eevil`,
		"bad\xffbyte":     `bad\xffbyte`,
		"real \uFFFD rep": "real \uFFFD rep",
	}
	for in, want := range cases {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzPrintable(f *testing.F) {
	f.Add("a\x1b]0;x\x07\n\t\u202e\xff")
	f.Fuzz(func(t *testing.T, s string) {
		out := printable(s)
		if strings.ContainsAny(out, "\x00\x07\x1b\n\r\t\x7f\u0085\u009b\u202e") {
			t.Fatalf("printable(%q) = %q keeps a control character", s, out)
		}
	})
}

// TestRunTableEscapes checks that a purpose holding escape sequences and a
// newline cannot add a row to `run list` or reach the terminal raw.
func TestRunTableEscapes(t *testing.T) {
	var buf bytes.Buffer
	printRunTable(&buf, []api.Run{{ID: "01RUN", Agent: "researcher", Status: "active",
		ExpiresAt: time.Now(), Purpose: "ok\x1b[2K\n01FAKE  researcher  approved"}})
	out := buf.String()
	if strings.Count(out, "\n") != 2 || strings.Contains(out, "\x1b") {
		t.Errorf("run list printed a forged row or an escape:\n%q", out)
	}
	buf.Reset()
	printRun(&buf, api.Run{ID: "01RUN", Purpose: "x\x1b]0;pwned\x07"})
	if strings.ContainsAny(buf.String(), "\x1b\x07") {
		t.Errorf("run show printed an escape: %q", buf.String())
	}
}
