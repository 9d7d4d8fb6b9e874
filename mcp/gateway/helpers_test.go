package gateway

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/agentauth/agentauth/agentauth/authz"
	"github.com/agentauth/agentauth/mcp/txntoken"
	"github.com/agentauth/agentauth/mcp/upstream"
)

var td = spiffeid.RequireTrustDomainFromString("example.org")

const (
	runA = "01RUNA"
	runB = "01RUNB"
)

func runID(run string) string { return "spiffe://example.org/agents/researcher/runs/" + run }

// testCA mints X.509-SVIDs for tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test root"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		URIs: []*url.URL{{Scheme: "spiffe", Host: "example.org"}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

func (ca *testCA) mint(t testing.TB, id string) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	u, _ := url.Parse(id)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		URIs: []*url.URL{u}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func (ca *testCA) serverTLS(t testing.TB) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{ca.mint(t, GatewayID(td).String())},
		ClientAuth:   tls.VerifyClientCertIfGiven, ClientCAs: ca.pool, MinVersion: tls.VersionTLS13,
	}
}

func (ca *testCA) httpClient(t testing.TB, id string) *http.Client {
	cfg := &tls.Config{RootCAs: ca.pool, MinVersion: tls.VersionTLS13}
	if id != "" {
		cfg.Certificates = []tls.Certificate{ca.mint(t, id)}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
}

// fakeUpstream serves a few in-process tools, a prompt and a resource.
type fakeUpstream struct {
	mu    sync.Mutex
	tools []upstream.Tool
	calls []upstream.Request
	fail  error
	// cancelled receives when a call to calc/block sees its context end.
	cancelled chan struct{}
}

func newFakeUpstream() *fakeUpstream {
	mk := func(server, name string, status upstream.PinStatus) upstream.Tool {
		def := mcp.NewToolWithRawSchema(name, "test tool",
			json.RawMessage(`{"type":"object","properties":{"path":{"type":"string"}}}`))
		return upstream.Tool{Server: server, Upstream: name, Definition: def, Status: status}
	}
	ok := upstream.StatusAccepted
	return &fakeUpstream{tools: []upstream.Tool{
		mk("fs", "read", ok), mk("fs", "write", ok), mk("calc", "add", ok), mk("fs", "slow", ok),
		mk("fs", "deploy", ok), mk("fs", "changed", upstream.StatusChanged),
		mk("fs", "hidden", upstream.StatusQuarantined), mk("calc", "block", ok),
	}, cancelled: make(chan struct{}, 1)}
}

func (u *fakeUpstream) Catalog() upstream.Catalog {
	res := func(uri string) upstream.Resource {
		return upstream.Resource{Server: "fs", UpstreamURI: uri,
			Definition: mcp.NewResource(upstream.JoinURI("fs", uri), uri)}
	}
	return upstream.Catalog{
		Tools:     u.tools,
		Resources: []upstream.Resource{res("file:///granted/a.txt"), res("file:///secret.txt")},
		Prompts: []upstream.Prompt{{Server: "fs", Upstream: "summary",
			Definition: mcp.NewPrompt("fs__summary")}},
	}
}

func (u *fakeUpstream) record(r upstream.Request) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.calls = append(u.calls, r)
	return u.fail
}

func (u *fakeUpstream) CallTool(ctx context.Context, r upstream.Request) (*mcp.CallToolResult, error) {
	if err := u.record(r); err != nil {
		return nil, err
	}
	if r.Name == "block" {
		<-ctx.Done()
		u.cancelled <- struct{}{}
		return nil, ctx.Err()
	}
	if r.Name == "slow" && r.Progress != nil {
		var meta struct{ ProgressToken any }
		_ = json.Unmarshal(r.Meta, &meta)
		for i := 1; i <= 3; i++ {
			r.Progress(mcp.ProgressNotificationParams{ProgressToken: meta.ProgressToken, Progress: float64(i), Total: 3})
		}
	}
	return mcp.NewToolResultText("args=" + string(r.Arguments)), nil
}

func (u *fakeUpstream) GetPrompt(ctx context.Context, r upstream.Request) (*mcp.GetPromptResult, error) {
	if err := u.record(r); err != nil {
		return nil, err
	}
	return mcp.NewGetPromptResult("summary", nil), nil
}

func (u *fakeUpstream) ReadResource(ctx context.Context, r upstream.Request) (*mcp.ReadResourceResult, error) {
	if err := u.record(r); err != nil {
		return nil, err
	}
	return &mcp.ReadResourceResult{Contents: []mcp.ResourceContents{
		mcp.TextResourceContents{URI: r.Name, Text: "contents of " + r.Name}}}, nil
}

func (u *fakeUpstream) Complete(ctx context.Context, r upstream.Request, p mcp.CompleteParams) (*mcp.CompleteResult, error) {
	if err := u.record(r); err != nil {
		return nil, err
	}
	return &mcp.CompleteResult{}, nil
}

func (u *fakeUpstream) lastCall(t *testing.T) upstream.Request {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.calls) == 0 {
		t.Fatal("nothing was forwarded")
	}
	return u.calls[len(u.calls)-1]
}

// meta decodes the _meta forwarded with r.
func meta(t *testing.T, r upstream.Request) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Meta, &m); err != nil {
		t.Fatalf("forwarded _meta %s: %v", r.Meta, err)
	}
	return m
}

func (u *fakeUpstream) callCount() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.calls)
}

// fakeAuthorizer grants runA fs/read under /granted, fs/slow, calc/add,
// and fs/deploy with approval; runB gets calc/add only.
type fakeAuthorizer struct {
	mu       sync.Mutex
	approved map[string]bool // approval ids already used
	requests []authz.Request
}

func (f *fakeAuthorizer) Visible(_ context.Context, run string, t authz.Target) bool {
	_, ok := f.grant(run, t)
	return ok
}

func (f *fakeAuthorizer) grant(run string, t authz.Target) (string, bool) {
	key := string(t.Kind) + ":" + t.Server + "/" + t.Name
	grants := map[string][]string{
		runA: {"tool:fs/read", "tool:fs/slow", "tool:calc/add", "tool:fs/deploy", "tool:fs/changed",
			"resource:fs/file:///granted/a.txt", "tool:calc/block"},
		runB: {"tool:calc/add"},
	}
	for _, g := range grants[run] {
		if g == key {
			return g, true
		}
	}
	return "", false
}

func (f *fakeAuthorizer) Authorize(_ context.Context, r authz.Request) authz.Decision {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r)
	d := authz.Decision{SponsorIssuer: "https://idp.example.org", SponsorSubject: "alice",
		Chain: []authz.Hop{{RunID: r.RunID, Agent: "researcher", SPIFFEID: runID(r.RunID)}}}
	g, ok := f.grant(r.RunID, r.Target)
	if !ok {
		d.Effect, d.Reason = authz.Deny, authz.ReasonToolNotGranted
		return d
	}
	d.GrantID = g
	if r.Target.Name == "read" {
		var args struct{ Path string }
		if json.Unmarshal(r.Arguments, &args) != nil || !strings.HasPrefix(args.Path, "/granted/") {
			d.Effect, d.Reason = authz.Deny, authz.ReasonConditionFalse
			return d
		}
	}
	if r.Target.Name == "deploy" {
		if r.ApprovalID == "ap-1" && !f.approved["ap-1"] {
			f.approved["ap-1"] = true
			d.Effect, d.Reason = authz.Allow, authz.ReasonApproved
			return d
		}
		d.Effect, d.Reason, d.ApprovalID = authz.ApprovalRequired, authz.ReasonApprovalRequired, "ap-1"
		return d
	}
	d.Effect, d.Reason = authz.Allow, authz.ReasonGranted
	return d
}

// fakeApprovals answers Await with a fixed outcome, or waits for ctx.
type fakeApprovals struct{ outcome string } // "approve", "deny", "wait"

func (f fakeApprovals) Await(ctx context.Context, _ string) (bool, error) {
	switch f.outcome {
	case "approve":
		return true, nil
	case "deny":
		return false, nil
	}
	<-ctx.Done()
	return false, ctx.Err()
}

// memAuditor keeps records in memory and can be made to fail.
type memAuditor struct {
	mu        sync.Mutex
	decisions []Record
	outcomes  []Record
	fail      bool
}

func (m *memAuditor) AppendDecision(_ context.Context, r Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return errors.New("disk full")
	}
	m.decisions = append(m.decisions, r)
	return nil
}

// records returns a copy of the decision records so far.
func (m *memAuditor) records() []Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Record(nil), m.decisions...)
}

func (m *memAuditor) AppendOutcome(_ context.Context, r Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.outcomes = append(m.outcomes, r)
	return nil
}

// harness is a gateway served over TLS on 127.0.0.1.
type harness struct {
	ca       *testCA
	gw       *Gateway
	url      string
	upstream *fakeUpstream
	authz    *fakeAuthorizer
	audit    *memAuditor
	tokens   *txntoken.Issuer
	spans    *tracetest.SpanRecorder
}

func newHarness(t *testing.T, mutate ...func(*Options)) *harness {
	t.Helper()
	h := &harness{ca: newTestCA(t), upstream: newFakeUpstream(),
		authz: &fakeAuthorizer{approved: map[string]bool{}}, audit: &memAuditor{}}
	var err error
	h.tokens, err = txntoken.NewIssuer(GatewayID(td).String(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	h.spans = tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(h.spans))
	opts := Options{TrustDomain: td, Authorizer: h.authz, Auditor: h.audit,
		Upstream: h.upstream, Tokens: h.tokens, ApprovalWait: 50 * time.Millisecond,
		Tracer: tp.Tracer("test")}
	for _, m := range mutate {
		m(&opts)
	}
	h.gw, err = New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = h.gw.Serve(ctx, ln, h.ca.serverTLS(t), time.Second); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	h.url = "https://" + ln.Addr().String() + Path
	return h
}

// client connects an mcp-go client as id, pinned to a protocol version
// ("" for mcp-go's default, the stateless 2026-07-28).
func (h *harness) client(t *testing.T, id, version string, opts ...transport.StreamableHTTPCOption) *client.Client {
	t.Helper()
	opts = append([]transport.StreamableHTTPCOption{transport.WithHTTPBasicClient(h.ca.httpClient(t, id))}, opts...)
	tr, err := transport.NewStreamableHTTP(h.url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	var copts []client.ClientOption
	if version != "" {
		copts = append(copts, client.WithProtocolVersion(version))
	}
	c := client.NewClient(tr, copts...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = version
	if version == "" {
		req.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	}
	req.Params.ClientInfo = mcp.Implementation{Name: "test", Version: "1"}
	if _, err := c.Initialize(ctx, req); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	return c
}

// post sends one raw JSON-RPC body and returns the status and decoded body.
func (h *harness) post(t *testing.T, hc *http.Client, body string, hdr map[string]string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw := readAll(resp)
	if i := strings.Index(raw, "data: "); strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") && i >= 0 {
		raw = strings.TrimSpace(strings.SplitN(raw[i+6:], "\n", 2)[0])
	}
	_ = json.Unmarshal([]byte(raw), &out)
	if out == nil {
		out = map[string]any{"_raw": raw}
	}
	return resp.StatusCode, out
}

func readAll(resp *http.Response) string {
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

func denialReason(t *testing.T, body map[string]any) string {
	t.Helper()
	e, ok := body["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error in %v", body)
	}
	if code, _ := e["code"].(float64); int(code) != DenialCode {
		t.Fatalf("error code = %v, want %d (%v)", e["code"], DenialCode, e)
	}
	data, _ := e["data"].(map[string]any)
	r, _ := data["reason"].(string)
	return r
}

func jsonRaw(s string) json.RawMessage { return json.RawMessage(s) }

// mcpClient starts and initializes an mcp-go client at url.
func mcpClient(t *testing.T, url string, opts ...transport.StreamableHTTPCOption) *client.Client {
	t.Helper()
	tr, err := transport.NewStreamableHTTP(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	req.Params.ClientInfo = mcp.Implementation{Name: "test", Version: "1"}
	if _, err := c.Initialize(ctx, req); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	return c
}
