package agentauth_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
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

const testPolicy = `
agents:
  researcher:
    grants: [read]
    max_delegation_depth: 2
    max_fan_out: 4
  summarizer:
    grants: [read]
grants:
  read:
    tools: [{server: fs, names: [read_file]}]
entitlements:
  - sponsors: {issuer: local}
    agents: [researcher, summarizer]
    grants: [read]
`

// gateway is a control server with a real CA, run manager and SQLite
// store, on a TLS listener and a Unix socket on 127.0.0.1.
type gateway struct {
	ca         *ca.CA
	controlURL string
	socket     string
	bundlePath string
}

func startGateway(tb testing.TB, svidTTL time.Duration) *gateway {
	tb.Helper()
	g, stop, err := newGateway(tb.TempDir(), svidTTL)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(stop)
	return g
}

// newGateway starts a gateway with its state in dir; stop ends it.
func newGateway(dir string, svidTTL time.Duration) (g *gateway, stop func(), err error) {
	cfg := config.Default()
	cfg.StateDir = dir
	cfg.CA.SVIDTTL = svidTTL
	td := spiffeid.RequireTrustDomainFromString(cfg.TrustDomain)
	ctx, cancel := context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			cancel()
		}
	}()
	authority, err := ca.Open(ctx, ca.Config{Dir: filepath.Join(dir, "ca"), TrustDomain: td,
		SVIDTTL: svidTTL, JWTTTL: time.Minute, SigningTTL: time.Hour, RootTTL: 24 * time.Hour})
	if err != nil {
		return nil, nil, err
	}
	p, err := policy.Parse("policy.yaml", []byte(testPolicy))
	if err != nil {
		return nil, nil, err
	}
	st, err := store.Open(ctx, filepath.Join(dir, "agentauth.db"))
	if err != nil {
		return nil, nil, err
	}
	m, err := runs.Open(ctx, runs.Options{TrustDomain: cfg.TrustDomain, Store: st, Policy: p})
	if err != nil {
		return nil, nil, err
	}
	svc := control.ManagerServices{Manager: m}
	srv, err := control.New(cfg, control.Deps{Runs: svc, Approvals: svc, Signer: authority,
		SVIDs: authority, Bundles: authority})
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	g = &gateway{ca: authority, controlURL: "https://" + ln.Addr().String(),
		socket: filepath.Join(dir, "control.sock"), bundlePath: filepath.Join(dir, "bundle.pem")}
	sl, err := control.ListenSocket(g.socket, 0o600)
	if err != nil {
		return nil, nil, err
	}
	done := make(chan struct{}, 2)
	go func() { _ = srv.ServeTLS(ctx, ln); done <- struct{}{} }()
	go func() { _ = srv.ServeSocket(ctx, sl); done <- struct{}{} }()
	stop = func() {
		cancel()
		<-done
		<-done
		st.Close()
	}
	pemData, err := agentauth.DialSocket(g.socket).Bundle(ctx)
	if err == nil {
		err = os.WriteFile(g.bundlePath, pemData, 0o600)
	}
	if err != nil {
		stop()
		return nil, nil, err
	}
	return g, stop, nil
}

// enroll starts a run as the local user and returns its enrollment.
func (g *gateway) enroll(tb testing.TB) agentauth.Enrollment {
	tb.Helper()
	resp, err := agentauth.DialSocket(g.socket).StartRun(context.Background(),
		api.StartRunRequest{Agent: "researcher", Grants: []string{"read"}, Purpose: "sdk test"})
	if err != nil {
		tb.Fatal(err)
	}
	return agentauth.Enrollment{Gateway: "https://127.0.0.1:1/mcp", Control: g.controlURL,
		BootstrapToken: resp.BootstrapToken, RunID: resp.Run.ID, SPIFFEID: resp.Run.SPIFFEID,
		TrustBundle: g.bundlePath}
}

func TestJoinFromEnvironment(t *testing.T) {
	g := startGateway(t, 10*time.Minute)
	e := g.enroll(t)
	for _, kv := range e.Environ() {
		k, v, _ := cut(kv)
		t.Setenv(k, v)
	}
	run, err := agentauth.Join(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer run.Close()
	if run.ID() != e.RunID || run.SPIFFEID().String() != e.SPIFFEID {
		t.Errorf("joined %s %s; want %s %s", run.ID(), run.SPIFFEID(), e.RunID, e.SPIFFEID)
	}
	svid, err := run.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	if svid.Certificates[0].NotAfter.After(time.Now().Add(11 * time.Minute)) {
		t.Errorf("SVID lives until %v, past its TTL", svid.Certificates[0].NotAfter)
	}
	id, err := run.Control().Whoami(context.Background())
	if err != nil || id.Kind != "agent" || id.RunID != e.RunID {
		t.Errorf("whoami with the run's SVID = %+v, %v", id, err)
	}
	// The token was single use.
	if _, err := agentauth.JoinEnrollment(context.Background(), e); !agentauth.IsCode(err, api.CodeBootstrapInvalid) {
		t.Errorf("second join with the same token: %v; want %s", err, api.CodeBootstrapInvalid)
	}
}

func cut(kv string) (string, string, bool) {
	for i := range kv {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], true
		}
	}
	return kv, "", false
}

func TestJoinMissingEnvironment(t *testing.T) {
	for _, k := range []string{agentauth.EnvControl, agentauth.EnvBootstrapToken, agentauth.EnvTrustBundle} {
		t.Setenv(k, "")
	}
	if _, err := agentauth.Join(context.Background()); err == nil {
		t.Fatal("Join without environment succeeded")
	}
}

func TestRunRenewsBeforeExpiry(t *testing.T) {
	g := startGateway(t, 4*time.Second)
	run, err := agentauth.JoinEnrollment(context.Background(), g.enroll(t))
	if err != nil {
		t.Fatal(err)
	}
	defer run.Close()
	first, _ := run.GetX509SVID()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		cur, _ := run.GetX509SVID()
		if cur != first {
			if !cur.Certificates[0].NotAfter.After(first.Certificates[0].NotAfter) {
				t.Errorf("renewed SVID expires %v, not after %v", cur.Certificates[0].NotAfter,
					first.Certificates[0].NotAfter)
			}
			if cur.PrivateKey == first.PrivateKey {
				t.Error("renewal kept the old key")
			}
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("SVID was not renewed before it expired")
}

func TestDelegateHandsChildItsToken(t *testing.T) {
	g := startGateway(t, 10*time.Minute)
	parent, err := agentauth.JoinEnrollment(context.Background(), g.enroll(t))
	if err != nil {
		t.Fatal(err)
	}
	defer parent.Close()
	child, err := parent.Delegate(context.Background(), api.DelegateRequest{Agent: "summarizer",
		Grants: []string{"read"}, Purpose: "summarize"})
	if err != nil {
		t.Fatal(err)
	}
	if child.Run.ParentID != parent.ID() || len(child.Run.Chain) != 2 {
		t.Fatalf("child %+v", child.Run)
	}
	cr, err := agentauth.JoinEnrollment(context.Background(), child.Enrollment)
	if err != nil {
		t.Fatalf("child joins: %v", err)
	}
	defer cr.Close()
	if cr.ID() != child.Run.ID {
		t.Errorf("child joined as %s, want %s", cr.ID(), child.Run.ID)
	}
	if _, err := parent.Delegate(context.Background(), api.DelegateRequest{Agent: "summarizer",
		Grants: []string{"write"}}); err == nil {
		t.Error("delegating an ungranted grant succeeded")
	}
}

func TestControlHTTPErrors(t *testing.T) {
	g := startGateway(t, time.Minute)
	_, err := agentauth.DialSocket(g.socket).GetRun(context.Background(), "nope")
	if !agentauth.IsCode(err, api.CodeNotFound) {
		t.Errorf("GetRun(nope) = %v; want %s", err, api.CodeNotFound)
	}
	_ = http.StatusOK
}

func TestStartRunAsSponsor(t *testing.T) {
	g := startGateway(t, 10*time.Minute)
	run, err := agentauth.StartRun(context.Background(), agentauth.DialSocket(g.socket),
		api.StartRunRequest{Agent: "researcher", Grants: []string{"read"}, Purpose: "local tool"},
		agentauth.Enrollment{Control: g.controlURL})
	if err != nil {
		t.Fatal(err)
	}
	bundle := run.Enrollment().TrustBundle
	if _, err := os.Stat(bundle); err != nil {
		t.Fatalf("bundle file: %v", err)
	}
	if err := run.Renew(context.Background()); err != nil {
		t.Errorf("renew over mTLS: %v", err)
	}
	child, err := run.Delegate(context.Background(), api.DelegateRequest{Agent: "summarizer", Grants: []string{"read"}})
	if err != nil {
		t.Fatal(err)
	}
	cr, err := agentauth.JoinEnrollment(context.Background(), child.Enrollment)
	if err != nil {
		t.Fatalf("child joins with the saved bundle: %v", err)
	}
	cr.Close()
	run.Close()
	if _, err := os.Stat(bundle); !os.IsNotExist(err) {
		t.Errorf("bundle file left behind: %v", err)
	}
}
