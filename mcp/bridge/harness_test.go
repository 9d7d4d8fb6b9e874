package bridge

import (
	"context"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	_ "modernc.org/sqlite"

	"github.com/agentauth/agentauth/agentauth/authz"
	"github.com/agentauth/agentauth/agentauth/config"
	"github.com/agentauth/agentauth/agentauth/control/api"
	"github.com/agentauth/agentauth/internal/testenv"
	"github.com/agentauth/agentauth/mcp/gateway"
	"github.com/agentauth/agentauth/mcp/txntoken"
	"github.com/agentauth/agentauth/mcp/upstream"
	"github.com/agentauth/agentauth/spiffe"
	"github.com/agentauth/agentauth/spiffe/ca"
)

var td = spiffeid.RequireTrustDomainFromString("example.org")

const runName = "01E2ERUN"

func runSPIFFEID() spiffeid.ID {
	return spiffeid.RequireFromString("spiffe://example.org/agents/researcher/runs/" + runName)
}

// caSigner signs the bridge's CSRs with the embedded CA directly, standing
// in for the control API's exchange and renew endpoints.
type caSigner struct {
	ca    *ca.CA
	id    spiffeid.ID
	mu    sync.Mutex
	calls int
}

func (s *caSigner) Enroll(ctx context.Context, csrPEM string) (api.SVID, error) {
	return s.sign(ctx, csrPEM)
}

func (s *caSigner) Renew(ctx context.Context, csrPEM string, _ Credentials) (api.SVID, error) {
	return s.sign(ctx, csrPEM)
}

func (s *caSigner) sign(ctx context.Context, csrPEM string) (api.SVID, error) {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
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

// grants is a small authorizer for end-to-end tests: exact targets, with
// an optional condition on a path argument.
type grants struct {
	allowed map[string]string // "kind:server/name" -> required path prefix ("" for none)
}

func key(t authz.Target) string { return string(t.Kind) + ":" + t.Server + "/" + t.Name }

func (g grants) Visible(_ context.Context, run string, t authz.Target) bool {
	_, ok := g.allowed[key(t)]
	return ok && run == runName
}

func (g grants) Authorize(_ context.Context, r authz.Request) authz.Decision {
	d := authz.Decision{SponsorIssuer: "https://idp.example.org", SponsorSubject: "alice",
		Chain: []authz.Hop{{RunID: r.RunID, Agent: "researcher", SPIFFEID: runSPIFFEID().String()}}}
	prefix, ok := g.allowed[key(r.Target)]
	if !ok || r.RunID != runName {
		d.Effect, d.Reason = authz.Deny, authz.ReasonToolNotGranted
		return d
	}
	if prefix != "" {
		var args struct {
			Path string `json:"path"`
		}
		if json.Unmarshal(r.Arguments, &args) != nil || !strings.HasPrefix(args.Path, prefix) {
			d.Effect, d.Reason = authz.Deny, authz.ReasonConditionFalse
			return d
		}
	}
	d.Effect, d.Reason, d.GrantID = authz.Allow, authz.ReasonGranted, key(r.Target)
	return d
}

// countingAuditor keeps decision records in memory.
type countingAuditor struct {
	mu        sync.Mutex
	decisions []gateway.Record
}

func (a *countingAuditor) AppendDecision(_ context.Context, r gateway.Record) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.decisions = append(a.decisions, r)
	return nil
}

func (a *countingAuditor) AppendOutcome(context.Context, gateway.Record) error { return nil }

// stack is a gateway in front of real stdio tool servers, served over
// mTLS by the embedded CA, with a bridge enrolled as one run.
type stack struct {
	authority *ca.CA
	gateway   *gateway.Gateway
	url       string
	granted   string // directory the filesystem grant covers
	bridge    *Bridge
	creds     *Renewing
	signer    *caSigner
	audit     *countingAuditor
}

func newStack(t *testing.T) *stack {
	t.Helper()
	ctx := context.Background()
	s := &stack{audit: &countingAuditor{}}
	var err error
	s.authority, err = ca.Open(ctx, ca.Config{Dir: t.TempDir(), TrustDomain: td,
		SVIDTTL: 10 * time.Minute, JWTTTL: 5 * time.Minute, SigningTTL: time.Hour, RootTTL: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.authority.Close() })

	root := t.TempDir()
	s.granted = filepath.Join(root, "granted")
	must(t, os.MkdirAll(s.granted, 0o755))
	must(t, os.WriteFile(filepath.Join(s.granted, "notes.txt"), []byte("granted notes"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "secret.txt"), []byte("secret"), 0o644))

	set := newSet(t, []config.Server{
		nodeServer(t, "everything", "mcp-server-everything"),
		nodeServer(t, "fs", "mcp-server-filesystem", root),
	})
	tokens, err := txntoken.NewIssuer(gateway.GatewayID(td).String(), time.Minute)
	must(t, err)
	az := grants{allowed: map[string]string{
		"tool:everything/echo":                                                "",
		"tool:everything/trigger-long-running-operation":                      "",
		"tool:fs/read_text_file":                                              s.granted + "/",
		"resource:everything/demo://resource/static/document/architecture.md": "",
		"prompt:everything/simple-prompt":                                     "",
	}}
	s.gateway, err = gateway.New(gateway.Options{TrustDomain: td, Authorizer: az, Auditor: s.audit,
		Upstream: set, Tokens: tokens, JWT: gateway.JWTSVIDs(s.authority)})
	must(t, err)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		_ = s.gateway.Serve(sctx, ln, gateway.AllowBearer(spiffe.ServerTLSConfig(s.authority)), time.Second)
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })
	s.url = "https://" + ln.Addr().String() + gateway.Path

	s.signer = &caSigner{ca: s.authority, id: runSPIFFEID()}
	s.creds, err = NewRenewing(ctx, s.signer, nil)
	must(t, err)
	s.bridge, err = New(Options{GatewayURL: s.url, GatewayID: gateway.GatewayID(td), Credentials: s.creds})
	must(t, err)
	return s
}

// serveHTTP starts the bridge's loopback listener and returns its URL.
func (s *stack) serveHTTP(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.bridge.ListenAndServe(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + ln.Addr().String() + "/mcp"
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func newSet(t *testing.T, servers []config.Server) *upstream.Set {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "agentauth.db")+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)")
	must(t, err)
	t.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	set, err := upstream.New(ctx, servers, upstream.Options{DB: db})
	must(t, err)
	t.Cleanup(func() { _ = set.Close() })
	return set
}

// nodeServer configures an npm MCP server over stdio, run by Node 22.
func nodeServer(t *testing.T, name, bin string, args ...string) config.Server {
	t.Helper()
	path := testenv.NodeBin(t, bin)
	env := map[string]string{}
	for _, kv := range testenv.NodeEnv(t) {
		if k, v, ok := strings.Cut(kv, "="); ok && k == "PATH" {
			env["PATH"] = v
		}
	}
	return config.Server{Name: name, Command: append([]string{path}, args...), Env: env}
}
