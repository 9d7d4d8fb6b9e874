package bridge

import (
	"context"
	"crypto/x509"
	"database/sql"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	_ "modernc.org/sqlite"

	"github.com/agentauth/agentauth/agentauth/audit"
	"github.com/agentauth/agentauth/agentauth/authz"
	"github.com/agentauth/agentauth/agentauth/config"
	"github.com/agentauth/agentauth/agentauth/control/api"
	"github.com/agentauth/agentauth/agentauth/policy"
	"github.com/agentauth/agentauth/agentauth/runs"
	"github.com/agentauth/agentauth/agentauth/store"
	"github.com/agentauth/agentauth/internal/testenv"
	"github.com/agentauth/agentauth/mcp/gateway"
	"github.com/agentauth/agentauth/mcp/txntoken"
	"github.com/agentauth/agentauth/mcp/upstream"
	"github.com/agentauth/agentauth/spiffe"
	"github.com/agentauth/agentauth/spiffe/ca"
)

var td = spiffeid.RequireTrustDomainFromString("example.org")

// policyYAML grants the researcher echo and the long-running operation of
// server-everything, one of its documents, and reading text files in the
// granted folder of server-filesystem.
const policyYAML = `
agents:
  researcher: {grants: [fs-read, everything-tools, docs]}
grants:
  fs-read:
    tools: [{server: fs, names: [read_text_file]}]
    condition: path_within(args.path, %q)
  everything-tools:
    tools: [{server: everything, names: [echo, trigger-long-running-operation]}]
  docs:
    resources: [{server: everything, uri_prefixes: ["demo://resource/static/document/architecture.md"]}]
entitlements:
  - sponsors: {issuer: local, groups: [research]}
    agents: [researcher]
    grants: [fs-read, everything-tools, docs]
`

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
	audit     *audit.Log
	run       runs.Run
}

func newStack(t *testing.T) *stack {
	t.Helper()
	ctx := context.Background()
	s := &stack{}
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
	az := s.startRun(t)
	s.audit, err = audit.Open(filepath.Join(t.TempDir(), "audit.db"))
	must(t, err)
	t.Cleanup(func() { _ = s.audit.Close() })
	s.gateway, err = gateway.New(gateway.Options{TrustDomain: td, Authorizer: az, Auditor: gateway.AuditLog(s.audit),
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

	s.signer = &caSigner{ca: s.authority, id: spiffeid.RequireFromString(s.run.SPIFFEID)}
	s.creds, err = NewRenewing(ctx, s.signer, nil)
	must(t, err)
	s.bridge, err = New(Options{GatewayURL: s.url, GatewayID: gateway.GatewayID(td), Credentials: s.creds})
	must(t, err)
	return s
}

// startRun loads the policy, starts a researcher run for a local sponsor
// and returns the real authorizer over it.
func (s *stack) startRun(t *testing.T) *authz.Authorizer {
	t.Helper()
	ctx := context.Background()
	p, err := policy.Parse("policy.yaml", []byte(fmt.Sprintf(policyYAML, s.granted)))
	must(t, err)
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), store.FileName))
	must(t, err)
	t.Cleanup(func() { st.Close() })
	m, err := runs.Open(ctx, runs.Options{TrustDomain: td.String(), Store: st, Policy: p})
	must(t, err)
	s.run, err = m.StartRun(ctx, runs.StartRequest{
		Sponsor: runs.Sponsor{Issuer: "local", Subject: "alice", Groups: []string{"research"}},
		Agent:   "researcher", Grants: []string{"fs-read", "everything-tools", "docs"}, Purpose: "end-to-end test",
	})
	must(t, err)
	return authz.New(m)
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
