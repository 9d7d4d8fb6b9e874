package conformance

import (
	"context"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	_ "modernc.org/sqlite"

	"github.com/agentauth/agentauth/agentauth/authz"
	"github.com/agentauth/agentauth/agentauth/config"
	"github.com/agentauth/agentauth/agentauth/control/api"
	"github.com/agentauth/agentauth/internal/testenv"
	"github.com/agentauth/agentauth/mcp/bridge"
	"github.com/agentauth/agentauth/mcp/gateway"
	"github.com/agentauth/agentauth/mcp/txntoken"
	"github.com/agentauth/agentauth/mcp/upstream"
	"github.com/agentauth/agentauth/spiffe"
	"github.com/agentauth/agentauth/spiffe/ca"
)

var td = spiffeid.RequireTrustDomainFromString("example.org")

const runName = "01CONFORMANCE"

// knownGaps are scenarios that pass directly but not yet through the
// gateway, with the reason. The test logs them instead of failing, and
// fails once one of them passes, so that the list stays true.
var knownGaps = map[string]string{}

// TestConformanceThroughGateway runs the conformance suite against the
// fixture directly and through bridge and gateway, and compares results
// scenario by scenario.
func TestConformanceThroughGateway(t *testing.T) {
	env := testenv.NodeEnv(t)
	suite := testenv.NodeBin(t, "conformance")
	fixtureURL := startFixture(t)

	direct := runSuite(t, suite, env, fixtureURL, "")
	gatewayURL := startGateway(t, fixtureURL)
	through := runSuite(t, suite, env, gatewayURL, "")

	var names []string
	for name := range direct {
		names = append(names, name)
	}
	sort.Strings(names)
	passedDirect := 0
	for _, name := range names {
		if !direct[name] {
			t.Logf("scenario %s fails directly; not compared", name)
			continue
		}
		passedDirect++
		gap, known := knownGaps[name]
		switch {
		case known && through[name]:
			t.Errorf("scenario %s now passes through the gateway; remove it from knownGaps", name)
		case known:
			t.Logf("scenario %s passes directly, not through the gateway (known gap: %s)", name, gap)
		case !through[name] && !retry(t, suite, env, gatewayURL, name):
			t.Errorf("scenario %s passes directly but fails through the gateway", name)
		}
	}
	if passedDirect < 20 {
		t.Fatalf("only %d scenarios pass directly; the fixture or the suite is broken", passedDirect)
	}
	t.Logf("%d scenarios pass directly; compared through the gateway", passedDirect)
}

// startFixture builds and starts mcp-go's conformance fixture server.
func startFixture(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "fixture")
	build := exec.Command("go", "build", "-o", bin, "github.com/mark3labs/mcp-go/examples/conformance")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build fixture: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "CONFORMANCE_ADDR="+addr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitListening(t, addr)
	return "http://" + addr + "/mcp"
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitListening(t *testing.T, addr string) {
	for range 100 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s", addr)
}

var scenarioDir = regexp.MustCompile(`^server-(.+)-\d{4}-\d{2}-\d{2}T`)

// retries bounds the reruns of a scenario that failed through the gateway.
const retries = 12

// retry runs one scenario through the gateway up to retries more times and
// reports whether one run passed. The fixture's logging and progress
// scenarios pass only now and then even when called directly (a 2-core run
// of eight each: logging passed 0 to 3 times, progress once): mcp-go's
// server hands a session's notifications to whichever of the call's stream
// and the standalone GET stream takes them first, so one may arrive after
// the call's result and go uncounted. Through the gateway the same race strikes on
// both hops, so one failure of a scenario that passed directly is not yet a
// regression; one that never passes in retries+1 runs is (the chance that a
// scenario passing a third of the time fails that often is about 1%).
func retry(t *testing.T, suite string, env []string, url, scenario string) bool {
	for i := 1; i <= retries; i++ {
		if runSuite(t, suite, env, url, scenario)[scenario] {
			t.Logf("scenario %s passed through the gateway on retry %d", scenario, i)
			return true
		}
	}
	return false
}

// runSuite runs every server scenario (or only scenario) against url and
// returns whether each scenario passed all its checks.
func runSuite(t *testing.T, suite string, env []string, url, scenario string) map[string]bool {
	t.Helper()
	out := t.TempDir()
	args := []string{"server", "--url", url, "-o", out}
	if scenario != "" {
		args = append(args, "--scenario", scenario)
	}
	cmd := exec.Command(suite, args...)
	cmd.Env = env
	cmd.Dir = filepath.Join(testenv.NodeModules(), "..")
	log, _ := cmd.CombinedOutput() // a failing scenario makes the exit status non-zero
	entries, err := os.ReadDir(out)
	if err != nil || len(entries) == 0 {
		t.Fatalf("conformance against %s wrote no results: %v\n%s", url, err, log)
	}
	results := map[string]bool{}
	for _, e := range entries {
		m := scenarioDir.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		results[m[1]] = passed(t, filepath.Join(out, e.Name(), "checks.json"))
	}
	return results
}

func passed(t *testing.T, path string) bool {
	raw, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	var checks []struct {
		ID, Status   string
		ErrorMessage string `json:"errorMessage"`
	}
	if json.Unmarshal(raw, &checks) != nil || len(checks) == 0 {
		return false
	}
	ok := true
	for _, c := range checks {
		if c.Status != "SUCCESS" {
			t.Logf("check %s: %s %s", c.ID, c.Status, c.ErrorMessage)
			ok = false
		}
	}
	return ok
}

// startGateway fronts the fixture with the gateway (embedded CA, mTLS)
// and returns the URL of a connect bridge enrolled as one run.
func startGateway(t *testing.T, fixtureURL string) string {
	t.Helper()
	ctx := context.Background()
	authority, err := ca.Open(ctx, ca.Config{Dir: t.TempDir(), TrustDomain: td,
		SVIDTTL: 10 * time.Minute, JWTTTL: 5 * time.Minute, SigningTTL: time.Hour, RootTTL: 24 * time.Hour})
	must(t, err)
	t.Cleanup(func() { _ = authority.Close() })

	var ready atomic.Pointer[gateway.Gateway] // set once the gateway exists
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "pins.db"))
	must(t, err)
	t.Cleanup(func() { db.Close() })
	set, err := upstream.New(ctx, []config.Server{{Name: "conformance", URL: fixtureURL}}, upstream.Options{
		DB: db,
		OnNotification: func(ctx context.Context, server string, n mcp.JSONRPCNotification) {
			if gw := ready.Load(); gw != nil {
				gw.Notify(ctx, server, n)
			}
		},
		OnChange: func(upstream.Change) {
			if gw := ready.Load(); gw != nil {
				gw.Refresh()
			}
		},
		Sampling: func(ctx context.Context, s string, r mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return ready.Load().Sampling(ctx, s, r)
		},
		Elicitation: func(ctx context.Context, s string, r mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
			return ready.Load().Elicitation(ctx, s, r)
		},
	})
	must(t, err)
	t.Cleanup(func() { _ = set.Close() })

	tokens, err := txntoken.NewIssuer(gateway.GatewayID(td).String(), time.Minute)
	must(t, err)
	gw, err := gateway.New(gateway.Options{TrustDomain: td, Authorizer: serverGrant{"conformance"},
		Auditor: nopAuditor{}, Upstream: set, Tokens: tokens, Unprefixed: "conformance"})
	must(t, err)
	ready.Store(gw)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = gw.Serve(sctx, ln, spiffe.ServerTLSConfig(authority), time.Second); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	runID := spiffeid.RequireFromString("spiffe://example.org/agents/conformance/runs/" + runName)
	creds, err := bridge.NewRenewing(ctx, &caSigner{ca: authority, id: runID}, nil)
	must(t, err)
	b, err := bridge.New(bridge.Options{GatewayURL: "https://" + ln.Addr().String() + gateway.Path,
		GatewayID: gateway.GatewayID(td), Credentials: creds})
	must(t, err)
	bln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	bctx, bcancel := context.WithCancel(ctx)
	bdone := make(chan struct{})
	go func() { _ = b.ListenAndServe(bctx, bln); close(bdone) }()
	t.Cleanup(func() { bcancel(); <-bdone })
	return "http://" + bln.Addr().String() + "/mcp"
}

// serverGrant grants the run every tool, prompt, resource and completion
// of one server: the grants cover the fixture's whole catalog.
type serverGrant struct{ server string }

func (g serverGrant) Visible(_ context.Context, run string, t authz.Target) bool {
	return run == runName && t.Server == g.server
}

func (g serverGrant) Authorize(_ context.Context, r authz.Request) authz.Decision {
	d := authz.Decision{Effect: authz.Deny, Reason: authz.ReasonToolNotGranted, SponsorSubject: "conformance"}
	if r.RunID == runName && r.Target.Server == g.server {
		d.Effect, d.Reason, d.GrantID = authz.Allow, authz.ReasonGranted, "all-of-"+g.server
	}
	return d
}

type nopAuditor struct{}

func (nopAuditor) AppendDecision(context.Context, gateway.Record) error { return nil }
func (nopAuditor) AppendOutcome(context.Context, gateway.Record) error  { return nil }

// caSigner signs the bridge's CSRs with the embedded CA directly.
type caSigner struct {
	ca *ca.CA
	id spiffeid.ID
}

func (s *caSigner) Enroll(ctx context.Context, csrPEM string) (api.SVID, error) {
	return s.sign(ctx, csrPEM)
}

func (s *caSigner) Renew(ctx context.Context, csrPEM string, _ bridge.Credentials) (api.SVID, error) {
	return s.sign(ctx, csrPEM)
}

func (s *caSigner) sign(ctx context.Context, csrPEM string) (api.SVID, error) {
	block, _ := pem.Decode([]byte(csrPEM))
	chain, err := s.ca.SignRunCSR(ctx, block.Bytes, s.id, time.Now().Add(time.Hour))
	if err != nil {
		return api.SVID{}, err
	}
	bundle, err := s.ca.GetX509BundleForTrustDomain(td)
	if err != nil {
		return api.SVID{}, err
	}
	return api.SVID{SPIFFEID: s.id.String(), CertChainPEM: pemCerts(chain), BundlePEM: pemCerts(bundle.X509Authorities())}, nil
}

func pemCerts(certs []*x509.Certificate) string {
	var b strings.Builder
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.String()
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
