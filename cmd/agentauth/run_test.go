package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agentauth/agentauth/agentauth"
	"github.com/agentauth/agentauth/agentauth/config"
	"github.com/agentauth/agentauth/agentauth/control"
	"github.com/agentauth/agentauth/agentauth/control/api"
	"github.com/agentauth/agentauth/agentauth/policy"
	"github.com/agentauth/agentauth/agentauth/runs"
	"github.com/agentauth/agentauth/agentauth/store"
	"github.com/agentauth/agentauth/spiffe/ca"
)

const runTestPolicy = `
agents:
  researcher:
    grants: [read, write]
roles:
  steward: {groups: [root]}
grants:
  read:
    tools: [{server: fs, names: [read_file]}]
  write:
    tools: [{server: fs, names: [write_file]}]
    approval: {approver: sponsor}
  emergency:
    tools: [{server: fs, names: [write_file]}]
    break_glass: {sponsors: {issuer: local}, agents: [researcher], max_lifetime: 15m}
entitlements:
  - sponsors: {issuer: local}
    agents: [researcher]
    grants: [read, write]
`

// controlFixture runs the control API over a real CA, run manager and
// SQLite store in a state directory, on the socket the CLI finds there
// and on a TLS listener named by AGENTAUTH_LISTEN_CONTROL.
type controlFixture struct {
	stateDir string
	manager  *runs.Manager
}

func startControl(t *testing.T) *controlFixture {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.StateDir = dir
	cfg.Listen.ControlSocket = filepath.Join(dir, "control.sock")
	td := spiffeid.RequireTrustDomainFromString(cfg.TrustDomain)
	ctx, cancel := context.WithCancel(context.Background())
	authority, err := ca.Open(ctx, ca.Config{Dir: filepath.Join(dir, "ca"), TrustDomain: td,
		SVIDTTL: time.Minute, JWTTTL: time.Minute, SigningTTL: time.Hour, RootTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse("policy.yaml", []byte(runTestPolicy))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, filepath.Join(dir, "agentauth.db"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := runs.Open(ctx, runs.Options{TrustDomain: cfg.TrustDomain, Store: st, Policy: p})
	if err != nil {
		t.Fatal(err)
	}
	svc := control.ManagerServices{Manager: m}
	srv, err := control.New(cfg, control.Deps{Runs: svc, Approvals: svc, Signer: authority,
		SVIDs: authority, Bundles: authority})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sl, err := control.ListenSocket(cfg.Listen.ControlSocket, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 2)
	go func() { _ = srv.ServeTLS(ctx, ln); done <- struct{}{} }()
	go func() { _ = srv.ServeSocket(ctx, sl); done <- struct{}{} }()
	t.Cleanup(func() {
		cancel()
		<-done
		<-done
		st.Close()
	})
	t.Setenv("AGENTAUTH_LISTEN_CONTROL", ln.Addr().String())
	return &controlFixture{stateDir: dir, manager: m}
}

func (f *controlFixture) cli(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	root := newRootCommand()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(""))
	root.SetArgs(append([]string{"--state-dir", f.stateDir}, args...))
	err := root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// TestMain lets the test binary act as an agent process that joins the
// run in its environment, for TestRunStartLaunchesAgent.
func TestMain(m *testing.M) {
	if os.Getenv("AGENTAUTH_TEST_AGENT") == "1" {
		os.Exit(actAsAgent())
	}
	if os.Getenv("AGENTAUTH_TEST_MAIN") == "1" {
		// Act as the agentauth binary itself.
		if err := newRootCommand().Execute(); err != nil {
			fmt.Fprintln(os.Stderr, "agentauth:", err)
			os.Exit(exitCode(err))
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func actAsAgent() int {
	run, err := agentauth.Join(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "join:", err)
		return 10
	}
	defer run.Close()
	fmt.Println("agent joined", run.ID(), os.Getenv(agentauth.EnvGateway))
	return 7
}

func TestRunStartLaunchesAgent(t *testing.T) {
	f := startControl(t)
	t.Setenv("AGENTAUTH_TEST_AGENT", "")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("AGENTAUTH_TEST_AGENT", "1")
	out, errOut, err := f.cli(t, "run", "start", "--agent", "researcher", "--grant", "read",
		"--purpose", "cli test", "--", self)
	os.Unsetenv("AGENTAUTH_TEST_AGENT")
	if code := exitCode(err); code != 7 {
		t.Fatalf("exit code %d (%v), want the agent's 7; stderr:\n%s", code, err, errOut)
	}
	fields := strings.Fields(out)
	if len(fields) < 4 || fields[0] != "agent" || fields[1] != "joined" {
		t.Fatalf("agent printed %q", out)
	}
	runID := fields[2]
	if !strings.HasSuffix(fields[3], "/mcp") {
		t.Errorf("gateway URL %q", fields[3])
	}
	r, err := f.manager.GetRun(context.Background(), runID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != runs.StatusRevoked {
		t.Errorf("run is %s after the command exited, want revoked", r.Status)
	}
	if !strings.Contains(errOut, "run "+runID+" revoked") {
		t.Errorf("stderr does not report the revocation:\n%s", errOut)
	}
}

func TestRunStartWithoutCommand(t *testing.T) {
	f := startControl(t)
	out, _, err := f.cli(t, "--json", "run", "start", "--agent", "researcher", "--grant", "read")
	if err != nil {
		t.Fatal(err)
	}
	var resp api.StartRunResponse
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	if resp.BootstrapToken == "" || resp.Run.Status != "active" {
		t.Errorf("resp %+v", resp)
	}

	out, _, err = f.cli(t, "run", "list")
	if err != nil || !strings.Contains(out, resp.Run.ID) || !strings.HasPrefix(out, "ID") {
		t.Errorf("run list: %v\n%s", err, out)
	}
	out, _, err = f.cli(t, "run", "show", resp.Run.ID)
	if err != nil || !strings.Contains(out, "Delegation chain:") || !strings.Contains(out, resp.Run.SPIFFEID) {
		t.Errorf("run show: %v\n%s", err, out)
	}
	out, _, err = f.cli(t, "run", "revoke", resp.Run.ID, "--reason", "test")
	if err != nil || !strings.Contains(out, "revoked") {
		t.Errorf("run revoke: %v\n%s", err, out)
	}
}

func TestRunExitCodes(t *testing.T) {
	f := startControl(t)
	cases := []struct {
		name string
		args []string
		code int
	}{
		{"missing flags", []string{"run", "start"}, exitUsage},
		{"not entitled", []string{"run", "start", "--agent", "researcher", "--grant", "admin"}, exitNotFound},
		{"unknown run", []string{"run", "show", "01NOPE"}, exitNotFound},
		{"unknown approval", []string{"approvals", "approve", "01NOPE"}, exitNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := f.cli(t, c.args...)
			if got := exitCode(err); got != c.code {
				t.Errorf("exit code %d (%v), want %d", got, err, c.code)
			}
		})
	}
}

func TestApprovalsCommands(t *testing.T) {
	f := startControl(t)
	out, _, err := f.cli(t, "--json", "run", "start", "--agent", "researcher", "--grant", "write")
	if err != nil {
		t.Fatal(err)
	}
	var resp api.StartRunResponse
	json.Unmarshal([]byte(out), &resp)
	live, _ := f.manager.Lookup(resp.Run.ID)
	id, err := f.manager.RequestApproval(context.Background(), runs.ApprovalCall{Live: live,
		Grant: f.manager.Policy().Grants["write"], Kind: "tool", Server: "fs", Name: "write_file",
		Args: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	out, _, err = f.cli(t, "approvals", "list")
	if err != nil || !strings.Contains(out, id) || !strings.Contains(out, "fs/write_file") {
		t.Fatalf("approvals list: %v\n%s", err, out)
	}
	out, _, err = f.cli(t, "approvals", "deny", id, "-m", "not today")
	if err != nil || !strings.Contains(out, "denied") {
		t.Fatalf("approvals deny: %v\n%s", err, out)
	}
	a, _ := f.manager.GetApproval(id)
	if a.Status != runs.ApprovalDenied || a.Comment != "not today" {
		t.Errorf("approval %+v", a)
	}
}

func TestCompletionScripts(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		root := newRootCommand()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs([]string{"completion", shell})
		if err := root.Execute(); err != nil || out.Len() == 0 {
			t.Errorf("completion %s: %v, %d bytes", shell, err, out.Len())
		}
	}
}
