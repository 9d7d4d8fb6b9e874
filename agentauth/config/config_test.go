package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "agentauth.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadPrecedence(t *testing.T) {
	path := writeFile(t, "trust_domain: file.example\nlisten:\n  mcp: 127.0.0.1:1\n  admin: 127.0.0.1:2\n")
	env := []string{"AGENTAUTH_LISTEN_MCP=127.0.0.1:3", "AGENTAUTH_LISTEN_ADMIN=127.0.0.1:4", "OTHER=x"}
	c, err := Load(path, env, map[string]string{"listen.admin": "127.0.0.1:5"})
	if err != nil {
		t.Fatal(err)
	}
	if c.TrustDomain != "file.example" {
		t.Errorf("trust_domain = %q, want the file's value", c.TrustDomain)
	}
	if c.Listen.MCP != "127.0.0.1:3" {
		t.Errorf("listen.mcp = %q, want the environment's value over the file's", c.Listen.MCP)
	}
	if c.Listen.Admin != "127.0.0.1:5" {
		t.Errorf("listen.admin = %q, want the flag's value over the environment's", c.Listen.Admin)
	}
	if c.Listen.Control != Default().Listen.Control {
		t.Errorf("listen.control = %q, want the default", c.Listen.Control)
	}
}

func TestLoadNoFile(t *testing.T) {
	c, err := Load("", nil, map[string]string{"state_dir": "/tmp/aa-state"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
	if got, want := c.Listen.ControlSocket, "/tmp/aa-state/control.sock"; got != want {
		t.Errorf("control socket = %q, want %q (derived after the flags)", got, want)
	}
	for name, addr := range map[string]string{"mcp": c.Listen.MCP, "control": c.Listen.Control, "admin": c.Listen.Admin} {
		if !strings.HasPrefix(addr, "127.0.0.1:") {
			t.Errorf("default %s listener %q is not on loopback", name, addr)
		}
	}
}

func TestLoadEmptyFile(t *testing.T) {
	if _, err := Load(writeFile(t, ""), nil, nil); err != nil {
		t.Errorf("empty file: %v", err)
	}
}

func TestLoadRejects(t *testing.T) {
	tests := []struct {
		name, file string
		env        []string
		flags      map[string]string
		want       string
	}{
		{name: "unknown key", file: "trust_domian: x\n", want: "trust_domian"},
		{name: "bad yaml", file: "listen: [\n", want: "invalid file"},
		{name: "bad duration env", env: []string{"AGENTAUTH_CA_SVID_TTL=soon"}, want: "AGENTAUTH_CA_SVID_TTL"},
		{name: "bad bool env", env: []string{"AGENTAUTH_AUDIT_RECORD_ARGUMENTS=maybe"}, want: "AGENTAUTH_AUDIT_RECORD_ARGUMENTS"},
		{name: "unknown flag key", flags: map[string]string{"listen.nope": "x"}, want: "unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.file != "" {
				path = writeFile(t, tt.file)
			}
			_, err := Load(path, tt.env, tt.flags)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	c := Default()
	c.TrustDomain = ""
	c.CA.SVIDTTL = -time.Second
	c.Servers = []Server{
		{Name: "fs", Command: []string{"x"}},
		{Name: "fs", URL: "https://127.0.0.1:1/mcp"},
		{Name: "both", Command: []string{"x"}, URL: "https://127.0.0.1:1/mcp"},
		{Command: []string{"x"}},
	}
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate accepted an invalid configuration")
	}
	for _, want := range []string{"trust_domain is empty", "ca.svid_ttl", `"fs" is used twice`, "exactly one of command and url", "name is empty"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error lacks %q:\n%v", want, err)
		}
	}
}

func TestValidateReportsEveryValue(t *testing.T) {
	c := Default()
	c.TrustDomain = "Bad Domain!"
	c.Log = Log{Level: "loud", Format: "xml"}
	c.Listen.MCP = "127.0.0.1"
	c.Listen.Control = "127.0.0.1:99999"
	c.Listen.Admin = "0.0.0.0:9464" // allowed: explicit
	c.Audit.Retention = -time.Hour
	c.Policy = filepath.Join(t.TempDir(), "missing.yaml")
	c.CA.SVIDTTL = 2 * time.Hour
	c.CA.JWTTTL = 2 * time.Hour
	c.CA.SigningTTL = time.Hour
	c.CA.RootTTL = 30 * time.Minute
	c.Servers = []Server{
		{Name: "my_fs", Command: []string{"x"}},
		{Name: "api", URL: "https://127.0.0.1:1/mcp", Headers: map[string]string{"Authorization": "Bearer ${TOKEN}"}},
	}
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate accepted an invalid configuration")
	}
	for _, want := range []string{
		`trust_domain "Bad Domain!"`, `log.level is "loud"`, `log.format is "xml"`,
		`listen.mcp "127.0.0.1"`, `listen.control "127.0.0.1:99999"`, "audit.retention", "missing.yaml",
		"ca.svid_ttl (2h0m0s) is longer than ca.signing_ttl", "ca.jwt_ttl (2h0m0s) is longer",
		"ca.signing_ttl (1h0m0s) is longer than ca.root_ttl", `name "my_fs"`,
		"header Authorization contains an unexpanded", "does not expand environment variables",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "listen.admin") {
		t.Errorf("a non-loopback listener is allowed, but Validate reports it:\n%v", err)
	}
}

func TestValidateAcceptsEdges(t *testing.T) {
	c := Default()
	c.Listen.MCP = "[::1]:0"
	c.Listen.Control = "localhost:65535"
	c.Audit.Retention = 0
	c.CA.SVIDTTL, c.CA.JWTTTL, c.CA.SigningTTL, c.CA.RootTTL = time.Hour, time.Hour, time.Hour, time.Hour
	c.Policy = writeFile(t, "agents: {}\n")
	c.Servers = []Server{{Name: "Fs-2", Command: []string{"x"}, Headers: map[string]string{"X-Cost": "$5"}}}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate rejected a valid configuration: %v", err)
	}
}
