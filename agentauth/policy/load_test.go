package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const minimal = `
agents:
  bot: {grants: [read]}
grants:
  read:
    tools: [{server: fs, names: [read_file]}]
entitlements:
  - sponsors: {groups: [eng]}
    agents: [bot]
    grants: [read]
`

func TestParseMinimal(t *testing.T) {
	p, err := Parse("p.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	g := p.Grants["read"]
	if !g.Covers(KindTool, "fs", "read_file") {
		t.Error("read does not cover fs/read_file")
	}
	for _, name := range []string{"READ_FILE", "read_file ", "read_ﬁle", "read\u200bfile"} {
		if g.Covers(KindTool, "fs", name) {
			t.Errorf("read covers %q; names must match exactly", name)
		}
	}
	if !p.Entitled(Identity{Issuer: "local", Subject: "a", Groups: []string{"eng"}}, "bot", "read") {
		t.Error("eng member not entitled")
	}
	if p.Entitled(Identity{Issuer: "local", Subject: "a", Groups: []string{"ENG"}}, "bot", "read") {
		t.Error("group match folded case")
	}
}

func TestConditionErrorPositions(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"plain", `
grants:
  g:
    tools: [{server: s, names: [t]}]
    condition: args.x = 1
`, "p.yaml:5:23"},
		{"quoted", `
grants:
  g:
    tools: [{server: s, names: [t]}]
    condition: "args.x = 1"
`, "p.yaml:5:24"},
		{"block", `
grants:
  g:
    tools: [{server: s, names: [t]}]
    condition: |
      args.x == 1 &&
        nosuchfn(args.y)
`, "p.yaml:7:17"},
		{"undeclared variable", `
grants:
  g:
    tools: [{server: s, names: [t]}]
    condition: user.name == "x"
`, "p.yaml:5:16"},
		{"not bool", `
grants:
  g:
    tools: [{server: s, names: [t]}]
    condition: args.x + 1
`, "p.yaml:5:16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(tt.doc))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name position %s", err, tt.want)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	tests := map[string]struct{ doc, want string }{
		"unknown field":             {"grants:\n  g:\n    tool: []\n", "field tool not found"},
		"empty grant":               {"grants:\n  g: {}\n", "covers nothing"},
		"bad name":                  {"grants:\n  G!:\n    tools: [{server: s, names: [t]}]\n", "name \"G!\" is invalid"},
		"undeclared grant":          {"agents:\n  a: {grants: [nope]}\n", "grant \"nope\", which is not declared"},
		"negative budget":           {"grants:\n  g: {tools: [{server: s, names: [t]}], budget: -1}\n", "budget"},
		"bad lifetime":              {"grants:\n  g: {tools: [{server: s, names: [t]}], max_lifetime: soon}\n", "max_lifetime"},
		"unknown approver":          {"grants:\n  g: {tools: [{server: s, names: [t]}], approval: {approver: boss}}\n", "approver \"boss\""},
		"empty prefix":              {"grants:\n  g: {resources: [{server: s, uri_prefixes: [\"\"]}]}\n", "empty uri_prefixes"},
		"empty selector":            {minimal + "  - sponsors: {}\n    agents: [bot]\n    grants: [read]\n", "selects no sponsors"},
		"two documents":             {minimal + "---\nagents: {}\n", "one YAML document"},
		"duplicate key":             {"grants:\n  g: {tools: [{server: s, names: [t]}]}\n  g: {tools: [{server: s, names: [u]}]}\n", "already defined"},
		"break glass no cap":        {"agents:\n  a: {}\ngrants:\n  g: {tools: [{server: s, names: [t]}], break_glass: {sponsors: {groups: [x]}, agents: [a]}}\n", "max_lifetime is required"},
		"entitled break glass":      {"agents:\n  a: {grants: [g]}\ngrants:\n  g: {tools: [{server: s, names: [t]}], break_glass: {sponsors: {groups: [x]}, agents: [a], max_lifetime: 5m}}\nentitlements:\n  - {sponsors: {groups: [x]}, agents: [a], grants: [g]}\n", "break-glass grant"},
		"condition not string":      {"grants:\n  g: {tools: [{server: s, names: [t]}], condition: [1]}\n", "non-empty string"},
		"tool server unknown grant": {"tool_servers:\n  relay: {grants: [nope]}\n", "tool server \"relay\""},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(tt.doc))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestConditionCostLimits(t *testing.T) {
	nested := "grants:\n  g:\n    tools: [{server: s, names: [t]}]\n" +
		"    condition: args.l.all(x, args.l.all(y, args.l.all(z, x + y + z > 0)))\n"
	if _, err := Parse("p.yaml", []byte(nested)); err == nil || !strings.Contains(err.Error(), "estimated worst-case cost") {
		t.Errorf("nested loops over arguments: error = %v, want a cost rejection", err)
	}
	c, err := compileCondition(`args.l.all(x, x + 1 > 0 && x * 2 > 0)`, Position{File: "t"}, false, 0)
	if err != nil {
		t.Fatalf("one loop over arguments rejected: %v", err)
	}
	small := `{"l":[1,2,3]}`
	if ok, err := c.Eval(&Call{Arguments: []byte(small)}); !ok || err != nil {
		t.Fatalf("short list = %v, %v", ok, err)
	}
	list := "[" + strings.Repeat("1,", 300_000) + "1]"
	ok, err := c.Eval(&Call{Arguments: []byte(`{"l":` + list + `}`)})
	if err == nil || ok || !strings.Contains(err.Error(), "cost limit") {
		t.Errorf("long evaluation = %v, %v; want the runtime cost limit to stop it", ok, err)
	}
}

func TestPathWithin(t *testing.T) {
	tests := []struct {
		p, dir string
		want   bool
	}{
		{"/data/a.txt", "/data", true},
		{"/data", "/data", true},
		{"/data/", "/data/", true},
		{"/data/x/../y", "/data", true},
		{"/data/../etc/passwd", "/data", false},
		{"/data/../../data/x", "/data", true},
		{"/database", "/data", false},
		{"data/x", "/data", false},
		{"/data/x\x00", "/data", false},
		{"/etc", "/", true},
		{"//data//x", "/data", true},
	}
	for _, tt := range tests {
		if got := PathWithin(tt.p, tt.dir); got != tt.want {
			t.Errorf("PathWithin(%q, %q) = %v, want %v", tt.p, tt.dir, got, tt.want)
		}
	}
}

func TestSelectorMatches(t *testing.T) {
	alice := Identity{Issuer: "https://idp", Subject: "u1", Email: "alice@example.com",
		Groups: []string{"eng", "oncall"}, Claims: map[string]string{"dept": "r&d"}}
	tests := []struct {
		name string
		sel  SponsorSelector
		want bool
	}{
		{"empty matches nobody", SponsorSelector{}, false},
		{"group", SponsorSelector{Groups: []string{"oncall"}}, true},
		{"issuer and group", SponsorSelector{Issuer: "https://idp", Groups: []string{"eng"}}, true},
		{"wrong issuer", SponsorSelector{Issuer: "local", Groups: []string{"eng"}}, false},
		{"subject", SponsorSelector{Subjects: []string{"u1"}}, true},
		{"email", SponsorSelector{Emails: []string{"alice@example.com"}}, true},
		{"email case differs", SponsorSelector{Emails: []string{"Alice@example.com"}}, false},
		{"claim", SponsorSelector{Claims: map[string][]string{"dept": {"r&d"}}}, true},
		{"claim and group both needed", SponsorSelector{Groups: []string{"eng"}, Claims: map[string][]string{"dept": {"ops"}}}, false},
	}
	for _, tt := range tests {
		if got := tt.sel.Matches(alice); got != tt.want {
			t.Errorf("%s: Matches = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestLoadFolder(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "agents.yaml"), "agents:\n  bot: {grants: [read]}\n")
	write(t, filepath.Join(dir, "grants.yaml"), "grants:\n  read:\n    tools: [{server: fs, names: [r]}]\n")
	write(t, filepath.Join(dir, "policy_test.yaml"), "tests: []\n")
	p, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Files) != 2 || p.Agents["bot"] == nil || p.Grants["read"] == nil {
		t.Errorf("loaded %v", p.Files)
	}
	write(t, filepath.Join(dir, "more.yaml"), "grants:\n  read:\n    tools: [{server: fs, names: [x]}]\n")
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "already declared in") {
		t.Errorf("duplicate across files: %v", err)
	}
}

func TestWatcherReloads(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	write(t, path, minimal)
	w, err := NewWatcher(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	changed := make(chan *Policy, 4)
	w.OnChange = func(p *Policy) { changed <- p }
	ctx, cancel := contextWithCancel()
	defer cancel()
	go w.Run(ctx)
	time.Sleep(100 * time.Millisecond) // let the watch start
	write(t, path, strings.Replace(minimal, "read_file", "read_text_file", 1))
	select {
	case p := <-changed:
		if !p.Grants["read"].Covers(KindTool, "fs", "read_text_file") {
			t.Error("reloaded policy is not the new one")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no reload after the file changed")
	}
	write(t, path, "grants: [")
	time.Sleep(500 * time.Millisecond)
	if !w.Policy().Grants["read"].Covers(KindTool, "fs", "read_text_file") {
		t.Error("a broken policy replaced the one in force")
	}
	if err := w.Reload(); err == nil {
		t.Error("Reload of a broken file returned no error")
	}
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte("grants:\n  g:\n    tools: [{server: s, names: [t]}]\n    condition: args.x == 1\n"))
	f.Add([]byte("agents: {a: {grants: [x]}}"))
	f.Add([]byte("&a [*a, *a]"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		p, err := Parse("fuzz.yaml", doc)
		if err != nil {
			return
		}
		for id, g := range p.Grants {
			if g.ID != id {
				t.Fatalf("grant %q stored under %q", g.ID, id)
			}
			if g.Condition != nil {
				g.Condition.Eval(&Call{Arguments: []byte(`{"x":1}`)})
			}
		}
	})
}

func TestReloadReusesPrograms(t *testing.T) {
	doc := "grants:\n  g:\n    tools: [{server: s, names: [t]}]\n    condition: args.reuse_check == 7\n"
	p1, err := Parse("a.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	p2, err := Parse("b.yaml", []byte("\n"+doc))
	if err != nil {
		t.Fatal(err)
	}
	c1, c2 := p1.Grants["g"].Condition, p2.Grants["g"].Condition
	if c1.program != c2.program {
		t.Error("the same condition was compiled twice")
	}
	if c2.Pos.File != "b.yaml" || c2.Pos.Line != 5 {
		t.Errorf("reused condition position = %s, want b.yaml:5", c2.Pos)
	}
}
