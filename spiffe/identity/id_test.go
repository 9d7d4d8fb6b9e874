package identity

import (
	"strings"
	"testing"

	"github.com/oklog/ulid/v2"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

var td = spiffeid.RequireTrustDomainFromString("example.org")

func TestNewRunID(t *testing.T) {
	a, b := NewRunID(), NewRunID()
	if a == b {
		t.Fatalf("two run ids are equal: %s", a)
	}
	for _, id := range []string{a, b} {
		if _, err := ulid.ParseStrict(id); err != nil {
			t.Fatalf("run id %q is not a ULID: %v", id, err)
		}
		if _, err := RunID(td, "researcher", id); err != nil {
			t.Fatalf("run id %q does not fit a SPIFFE ID: %v", id, err)
		}
	}
}

func TestRunIDAndParseRun(t *testing.T) {
	id, err := RunID(td, "researcher", "01HZZ")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := id.String(), "spiffe://example.org/agents/researcher/runs/01HZZ"; got != want {
		t.Fatalf("RunID = %s, want %s", got, want)
	}
	run, err := ParseRun(id)
	if err != nil || run != (Run{Agent: "researcher", RunID: "01HZZ"}) {
		t.Fatalf("ParseRun = %+v, %v", run, err)
	}
}

func TestRunIDRejects(t *testing.T) {
	for _, tc := range []struct{ agent, run string }{
		{"", "r1"}, {"a", ""}, {"..", "r1"}, {"a", "."}, {"a/b", "r1"}, {"a", "r1/x"}, {"a b", "r1"}, {"a", "r%31"},
	} {
		if id, err := RunID(td, tc.agent, tc.run); err == nil {
			t.Errorf("RunID(%q, %q) = %s, want an error", tc.agent, tc.run, id)
		}
	}
	if _, err := RunID(spiffeid.TrustDomain{}, "a", "r1"); err == nil {
		t.Error("RunID accepted an empty trust domain")
	}
}

func TestParseRunRejects(t *testing.T) {
	for _, s := range []string{
		"spiffe://example.org/agentauth/gateway",
		"spiffe://example.org/agents/a/runs",
		"spiffe://example.org/agents/a/runs/r1/child",
		"spiffe://example.org/agents/a/steps/r1",
		"spiffe://example.org/tools/a/runs/r1",
	} {
		if run, err := ParseRun(spiffeid.RequireFromString(s)); err == nil {
			t.Errorf("ParseRun(%s) = %+v, want an error", s, run)
		}
	}
}

func TestToolIDAndGatewayID(t *testing.T) {
	id, err := ToolID(td, "github")
	if err != nil || id.String() != "spiffe://example.org/tools/github" {
		t.Fatalf("ToolID = %v, %v", id, err)
	}
	if _, err := ToolID(td, "../x"); err == nil {
		t.Fatal("ToolID accepted a dot-dot segment")
	}
	if got := GatewayID(td).String(); got != "spiffe://example.org/agentauth/gateway" {
		t.Fatalf("GatewayID = %s", got)
	}
}

func TestParse(t *testing.T) {
	id, err := Parse("spiffe://example.org/agents/a/runs/r1", td)
	if err != nil || id.Path() != "/agents/a/runs/r1" {
		t.Fatalf("Parse = %v, %v", id, err)
	}
}

func TestParseRejects(t *testing.T) {
	cases := map[string]string{
		"empty":               "",
		"oversized":           "spiffe://example.org/" + strings.Repeat("a", MaxIDLength),
		"empty path":          "spiffe://example.org",
		"root path":           "spiffe://example.org/",
		"other trust domain":  "spiffe://evil.example/agents/a/runs/r1",
		"suffix trust domain": "spiffe://example.org.evil/agents/a/runs/r1",
		"wrong scheme":        "https://example.org/agents/a",
		"upper-case domain":   "spiffe://Example.org/agents/a",
		"query":               "spiffe://example.org/agents/a?x=1",
		"fragment":            "spiffe://example.org/agents/a#x",
		"port":                "spiffe://example.org:443/agents/a",
		"user info":           "spiffe://u@example.org/agents/a",
		"dot segment":         "spiffe://example.org/agents/../gateway",
		"double slash":        "spiffe://example.org/agents//a",
		"trailing slash":      "spiffe://example.org/agents/a/",
		"percent encoding":    "spiffe://example.org/agents/%61",
		"space":               "spiffe://example.org/agents/a b",
		"NUL byte":            "spiffe://example.org/agents/a\x00",
	}
	for name, s := range cases {
		t.Run(name, func(t *testing.T) {
			if id, err := Parse(s, td); err == nil {
				t.Fatalf("Parse(%q) = %s, want an error", s, id)
			}
		})
	}
}

func TestHasPrefix(t *testing.T) {
	id := func(s string) spiffeid.ID { return spiffeid.RequireFromString(s) }
	cases := []struct {
		id, prefix string
		want       bool
	}{
		{"spiffe://example.org/agents/a/runs/r1", "spiffe://example.org/agents/a/runs/r1", true},
		{"spiffe://example.org/agents/a/runs/r1/x", "spiffe://example.org/agents/a/runs/r1", true},
		{"spiffe://example.org/agents/a/runs/r10", "spiffe://example.org/agents/a/runs/r1", false},
		{"spiffe://example.org/agents/a/runs/r1", "spiffe://example.org/agents/a/runs/r10", false},
		{"spiffe://example.org/agents/ab", "spiffe://example.org/agents/a", false},
		{"spiffe://example.org/agents/a", "spiffe://example.org/agents/a/runs", false},
		{"spiffe://example.org/agents/a", "spiffe://example.org", true},
		{"spiffe://other.org/agents/a", "spiffe://example.org/agents", false},
		{"spiffe://other.org/agents/a", "spiffe://example.org", false},
	}
	for _, tc := range cases {
		if got := HasPrefix(id(tc.id), id(tc.prefix)); got != tc.want {
			t.Errorf("HasPrefix(%s, %s) = %v, want %v", tc.id, tc.prefix, got, tc.want)
		}
	}
	if HasPrefix(spiffeid.ID{}, id("spiffe://example.org")) {
		t.Error("HasPrefix matched the zero ID")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"spiffe://example.org/agents/a/runs/r1", "spiffe://example.org", "spiffe://evil/a",
		"spiffe://example.org/a/../b", "spiffe://example.org/%2e", "", "spiffe://example.org/a?b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := Parse(s, td)
		if err != nil {
			return
		}
		if !id.MemberOf(td) || id.Path() == "" || id.String() != s {
			t.Fatalf("Parse(%q) = %q, which is outside %s, has no path or is not canonical", s, id, td)
		}
		if !HasPrefix(id, td.ID()) || !HasPrefix(id, id) {
			t.Fatalf("HasPrefix is false for %q under its own trust domain or itself", id)
		}
		if run, err := ParseRun(id); err == nil {
			again, err := RunID(td, run.Agent, run.RunID)
			if err != nil || again != id {
				t.Fatalf("ParseRun(%q) = %+v does not round-trip: %v, %v", id, run, again, err)
			}
		}
	})
}
