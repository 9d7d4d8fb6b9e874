package control

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agentauth/agentauth/agentauth/config"
	"github.com/agentauth/agentauth/agentauth/control/api"
	"github.com/agentauth/agentauth/agentauth/policy"
	"github.com/agentauth/agentauth/agentauth/runs"
	"github.com/agentauth/agentauth/agentauth/store"
	"github.com/agentauth/agentauth/internal/oidcop"
	"github.com/agentauth/agentauth/spiffe/ca"
)

const testClientID = "agentauth-control"

// harness runs a control server over a real CA, with a TLS listener and a
// Unix socket, and optionally a real OpenID provider.
type harness struct {
	t       testing.TB
	cfg     config.Config
	td      spiffeid.TrustDomain
	ca      *ca.CA
	runs    *memRuns
	manager *runs.Manager // set by withManager instead of runs
	srv     *Server
	tlsURL  string
	sock    string
	op      *oidcop.Provider
	now     time.Time // zero means the real clock
	noJWTs  bool      // leave Deps.JWTs nil
	nowFunc func() time.Time
}

type harnessOption func(*harness)

func withOP(h *harness) {
	h.op = oidcop.Start(h.t)
	h.op.AddClient(&oidcop.Client{ID: testClientID, Redirects: []string{"https://client.test/cb"}})
	h.cfg.OIDC = config.OIDC{Issuer: h.op.Issuer, Audience: testClientID, GroupsClaim: "groups",
		Roles: map[string]string{"auditors": RoleAuditor, "platform-admins": RoleAdmin}}
}

func newHarness(t testing.TB, opts ...harnessOption) *harness {
	t.Helper()
	h := &harness{t: t, cfg: config.Default()}
	h.cfg.StateDir = t.TempDir()
	h.td = spiffeid.RequireTrustDomainFromString(h.cfg.TrustDomain)
	for _, o := range opts {
		o(h)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var err error
	h.ca, err = ca.Open(ctx, ca.Config{Dir: filepath.Join(h.cfg.StateDir, "ca"), TrustDomain: h.td,
		SVIDTTL: h.cfg.CA.SVIDTTL, JWTTTL: h.cfg.CA.JWTTTL, SigningTTL: h.cfg.CA.SigningTTL,
		RootTTL: h.cfg.CA.RootTTL})
	if err != nil {
		t.Fatalf("open CA: %v", err)
	}
	deps := Deps{Signer: h.ca, SVIDs: h.ca, Bundles: h.ca, JWTs: h.ca, Now: h.clock}
	if h.noJWTs {
		deps.JWTs = nil
	}
	if h.manager != nil {
		svc := ManagerServices{Manager: h.manager}
		deps.Runs, deps.Approvals = svc, svc
	} else {
		h.runs = newMemRuns(h.td)
		deps.Runs, deps.Approvals = h.runs, h.runs
	}
	if h.op != nil {
		deps.HTTPClient = h.op.Client
	}
	h.srv, err = New(h.cfg, deps)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.serve(ctx, cancel)
	return h
}

func (h *harness) clock() time.Time {
	if h.nowFunc != nil {
		return h.nowFunc()
	}
	return time.Now()
}

func (h *harness) serve(ctx context.Context, cancel context.CancelFunc) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	h.tlsURL = "https://" + ln.Addr().String()
	h.sock = filepath.Join(h.cfg.StateDir, "run", "control.sock")
	sl, err := ListenSocket(h.sock, 0o600)
	if err != nil {
		h.t.Fatal(err)
	}
	done := make(chan struct{}, 2)
	go func() { _ = h.srv.ServeTLS(ctx, ln); done <- struct{}{} }()
	go func() { _ = h.srv.ServeSocket(ctx, sl); done <- struct{}{} }()
	h.t.Cleanup(func() {
		cancel()
		for range 2 {
			<-done
		}
	})
}

// roots returns the pool that verifies the gateway's certificate.
func (h *harness) roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(h.ca.Root())
	return p
}

// tlsClient returns a client of the TLS listener, presenting cert when set.
func (h *harness) tlsClient(cert *tls.Certificate) *http.Client {
	tc := &tls.Config{RootCAs: h.roots(), ServerName: "",
		// The gateway's SVID has no DNS name, only its SPIFFE ID.
		InsecureSkipVerify: true, VerifyPeerCertificate: h.verifyGateway}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 20 * time.Second}
}

func (h *harness) verifyGateway(raw [][]byte, _ [][]*x509.Certificate) error {
	var certs []*x509.Certificate
	for _, r := range raw {
		c, err := x509.ParseCertificate(r)
		if err != nil {
			return err
		}
		certs = append(certs, c)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{Roots: h.roots(), Intermediates: inter})
	return err
}

func (h *harness) socketClient() *http.Client {
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", h.sock)
		}}}
}

// call sends a JSON request and decodes the reply into out (when not nil).
// It returns the status and the error body for non-2xx replies.
func call(t testing.TB, c *http.Client, method, url, bearer string, body, out any) (int, api.Error) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var e api.Error
	if resp.StatusCode >= 300 {
		if err := json.Unmarshal(data, &e); err != nil {
			t.Fatalf("%s %s: status %d with non-JSON error body %q", method, url, resp.StatusCode, data)
		}
		return resp.StatusCode, e
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, url, data, err)
		}
	}
	return resp.StatusCode, e
}

// newCSR returns a P-256 key and a PEM CSR for it with no names.
func newCSR(t testing.TB) (*ecdsa.PrivateKey, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// agentCert turns an issued SVID into a TLS client certificate.
func agentCert(t testing.TB, key *ecdsa.PrivateKey, svid *api.SVID) *tls.Certificate {
	t.Helper()
	c := &tls.Certificate{PrivateKey: key}
	rest := []byte(svid.CertChainPEM)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		c.Certificate = append(c.Certificate, b.Bytes)
	}
	if len(c.Certificate) == 0 {
		t.Fatal("SVID has no certificate")
	}
	return c
}

// startAgent starts a run over the socket and enrolls it with a bootstrap
// token; it returns the run and an HTTP client holding its SVID.
func (h *harness) startAgent(t *testing.T, grants ...string) (api.Run, *http.Client) {
	t.Helper()
	var start api.StartRunResponse
	st, e := call(t, h.socketClient(), "POST", "http://local/v1/runs", "",
		api.StartRunRequest{Agent: "researcher", Grants: grants, Purpose: "test"}, &start)
	if st != http.StatusCreated {
		t.Fatalf("start run: status %d %+v", st, e)
	}
	key, csrPEM := newCSR(t)
	var svid api.SVID
	st, e = call(t, h.tlsClient(nil), "POST", h.tlsURL+"/v1/svid/exchange", "",
		api.ExchangeRequest{BootstrapToken: start.BootstrapToken, CSR: csrPEM}, &svid)
	if st != http.StatusOK {
		t.Fatalf("exchange: status %d %+v", st, e)
	}
	return start.Run, h.tlsClient(agentCert(t, key, &svid))
}

// withManager serves the control API from a real runs.Manager over a
// SQLite store, with the given policy.
func withManager(policyYAML string) harnessOption {
	return func(h *harness) {
		p, err := policy.Parse("policy.yaml", []byte(policyYAML))
		if err != nil {
			h.t.Fatalf("policy: %v", err)
		}
		st, err := store.Open(context.Background(), filepath.Join(h.cfg.StateDir, "agentauth.db"))
		if err != nil {
			h.t.Fatalf("store: %v", err)
		}
		h.t.Cleanup(func() { st.Close() })
		h.manager, err = runs.Open(context.Background(), runs.Options{TrustDomain: h.cfg.TrustDomain,
			Store: st, Policy: p})
		if err != nil {
			h.t.Fatalf("runs: %v", err)
		}
	}
}
