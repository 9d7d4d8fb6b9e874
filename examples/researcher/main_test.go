package main_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentauth/agentauth/agentauth/config"
	"github.com/agentauth/agentauth/agentauth/server"
	"github.com/agentauth/agentauth/internal/testenv"
)

const policy = `agents:
  researcher:
    grants: [fs-read]
    max_delegation_depth: 1
    max_fan_out: 1
  summarizer:
    grants: [fs-read-notes]
grants:
  fs-read:
    tools: [{server: fs, names: [read_text_file, list_directory]}]
    condition: path_within(args.path, "FILES")
  fs-read-notes:
    tools: [{server: fs, names: [read_text_file]}]
    condition: path_within(args.path, "FILES/notes")
entitlements:
  - sponsors: {issuer: local}
    agents: [researcher]
    grants: [fs-read]
  - sponsors: {issuer: local}
    agents: [summarizer]
    grants: [fs-read-notes]
`

func build(t *testing.T, dir, pkg string) string {
	t.Helper()
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = testenv.RepoRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// TestResearcherRunsAsAgent starts a gateway, then runs the example with
// `agentauth run start -- researcher`, as its doc comment says.
func TestResearcherRunsAsAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two binaries and starts a gateway")
	}
	bin := t.TempDir()
	agentauthBin := build(t, bin, "./cmd/agentauth")
	researcher := build(t, bin, "./examples/researcher")

	dir, err := os.MkdirTemp("", "aa-res-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	files := filepath.Join(dir, "files")
	note := filepath.Join(files, "notes", "plan.md")
	if err := os.MkdirAll(filepath.Dir(note), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(note, []byte("# Plan\nship it\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	policyPath := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyPath, []byte(strings.ReplaceAll(policy, "FILES", files)), 0o600); err != nil {
		t.Fatal(err)
	}

	cfg := config.Default()
	cfg.StateDir, cfg.Policy = filepath.Join(dir, "state"), policyPath
	cfg.Listen.MCP, cfg.Listen.Control, cfg.Listen.Admin = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Listen.ControlSocket = filepath.Join(dir, "control.sock")
	cfg.Servers = []config.Server{{Name: "fs", Command: []string{agentauthBin, "example-server", "localfs", files}}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	g, err := server.Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = g.Stop() }()

	cmd := exec.CommandContext(ctx, agentauthBin, "run", "start",
		"--state-dir", cfg.StateDir, "--agent", "researcher", "--grant", "fs-read",
		"--", researcher, "-read", note)
	cmd.Env = append(os.Environ(), "AGENTAUTH_LISTEN_CONTROL_SOCKET="+cfg.Listen.ControlSocket,
		"AGENTAUTH_LISTEN_MCP="+g.MCPAddr, "AGENTAUTH_LISTEN_CONTROL="+g.ControlAddr)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("run start -- researcher: %v\n%s", err, out)
	}
	for _, want := range []string{"tools: fs__list_directory, fs__read_text_file",
		"read " + note + ": 15 bytes", "delegated to run", "tools: fs__read_text_file"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
