package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	_ "modernc.org/sqlite"

	"github.com/agentauth/agentauth/agentauth/audit"
	"github.com/agentauth/agentauth/agentauth/authz"
	"github.com/agentauth/agentauth/agentauth/config"
	"github.com/agentauth/agentauth/agentauth/policy"
	"github.com/agentauth/agentauth/agentauth/runs"
	"github.com/agentauth/agentauth/agentauth/store"
	"github.com/agentauth/agentauth/mcp/txntoken"
	"github.com/agentauth/agentauth/mcp/upstream"
)

// benchRun starts a run under a one-grant policy and returns the real
// authorizer and the run's SPIFFE ID.
func benchRun(b *testing.B) (*authz.Authorizer, string) {
	ctx := context.Background()
	p, err := policy.Parse("policy.yaml", []byte(`
agents:
  researcher: {grants: [echo]}
grants:
  echo:
    tools: [{server: bench, names: [echo]}]
    condition: size(args.message) <= 1000
entitlements:
  - sponsors: {issuer: local, groups: [research]}
    agents: [researcher]
    grants: [echo]
`))
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(ctx, filepath.Join(b.TempDir(), store.FileName))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	m, err := runs.Open(ctx, runs.Options{TrustDomain: td.String(), Store: st, Policy: p})
	if err != nil {
		b.Fatal(err)
	}
	run, err := m.StartRun(ctx, runs.StartRequest{
		Sponsor: runs.Sponsor{Issuer: "local", Subject: "alice", Groups: []string{"research"}},
		Agent:   "researcher", Grants: []string{"echo"}, Purpose: "benchmark",
	})
	if err != nil {
		b.Fatal(err)
	}
	return authz.New(m), run.SPIFFEID
}

// benchToolServer serves one fast "echo" tool over Streamable HTTP.
func benchToolServer(b *testing.B) string {
	srv := server.NewMCPServer("bench", "1")
	srv.AddTool(mcp.NewToolWithRawSchema("echo", "echo", json.RawMessage(`{"type":"object"}`)),
		func(_ context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText("ok"), nil
		})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: server.NewStreamableHTTPServer(srv)}
	go func() { _ = hs.Serve(ln) }()
	b.Cleanup(func() { _ = hs.Close() })
	return "http://" + ln.Addr().String() + "/mcp"
}

// benchStack is a tool server and a gateway in front of it with mTLS,
// the real authorizer over a started run, the SQLite audit log (or an
// in-memory one) and tracing on.
// benchAudit selects the audit log of a benchmark: the SQLite log as the
// gateway runs it by default (audit.sync normal), the same with an fsync
// per group commit (audit.sync full), or an in-memory stand-in.
type benchAudit int

const (
	auditSQLite benchAudit = iota
	auditSQLiteFsync
	auditMemory
)

// benchStack returns an mcp-go client of the tool server and one of the
// gateway in front of it, both speaking protocol version version, and the
// gateway's token issuer. The upstream set relays sampling and
// elicitation as `agentauth serve` wires it, so it speaks to the tool
// server on the newest revision with sessions.
func benchStack(b *testing.B, mode benchAudit, version string) (direct, through *client.Client, tokens *txntoken.Issuer) {
	toolURL := benchToolServer(b)
	errNotHere := errors.New("not in the benchmark")
	set, err := upstream.New(context.Background(), []config.Server{{Name: "bench", URL: toolURL}}, upstream.Options{
		DB: pinsDB(b),
		Sampling: func(context.Context, string, mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return nil, errNotHere
		},
		Elicitation: func(context.Context, string, mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
			return nil, errNotHere
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = set.Close() })
	log, err := audit.Open(filepath.Join(b.TempDir(), "audit.db"), audit.WithFsync(mode == auditSQLiteFsync))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = log.Close() })
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tokens, _ = txntoken.NewIssuer(GatewayID(td).String(), time.Minute)
	ca := newTestCA(b)
	az, runSPIFFEID := benchRun(b)
	var auditor Auditor = AuditLog(log)
	if mode == auditMemory {
		auditor = &memAuditor{}
	}
	gw, err := New(Options{TrustDomain: td, Authorizer: az, Auditor: auditor,
		Upstream: set, Tokens: tokens, Tracer: tp.Tracer("bench")})
	if err != nil {
		b.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = gw.Serve(ctx, ln, ca.serverTLS(b), time.Second); close(done) }()
	b.Cleanup(func() { cancel(); <-done })

	direct = benchClient(b, toolURL, &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}, version)
	through = benchClient(b, "https://"+ln.Addr().String()+Path, ca.httpClient(b, runSPIFFEID), version)
	return direct, through, tokens
}

func benchClient(b *testing.B, url string, hc *http.Client, version string) *client.Client {
	if tr, ok := hc.Transport.(*http.Transport); ok {
		tr.MaxIdleConnsPerHost = 64
	}
	tr, err := transport.NewStreamableHTTP(url, transport.WithHTTPBasicClient(hc))
	if err != nil {
		b.Fatal(err)
	}
	c := client.NewClient(tr, client.WithProtocolVersion(version))
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = version
	req.Params.ClientInfo = mcp.Implementation{Name: "bench", Version: "1"}
	if _, err := c.Initialize(ctx, req); err != nil {
		b.Fatal(err)
	}
	return c
}

func benchCall(b *testing.B, c *client.Client, name string) {
	benchCallWith(b, c, name, "")
}

// benchCallWith calls name, with token in _meta and in the Txn-Token
// header when it is set, as the gateway forwards a call.
func benchCallWith(b *testing.B, c *client.Client, name, token string) {
	var r mcp.CallToolRequest
	r.Params.Name = name
	r.Params.Arguments = json.RawMessage(`{"message":"hi"}`)
	if token != "" {
		r.Params.Meta = &mcp.Meta{AdditionalFields: map[string]any{txntoken.MetaKey: token}}
		r.Header = http.Header{txntoken.Header: {token}}
	}
	res, err := c.CallTool(context.Background(), r)
	if err != nil || res.IsError {
		b.Fatalf("call %s: %v", name, err)
	}
}

// benchToken signs a transaction token like the ones the gateway forwards
// in the benchmark, for a one-hop chain.
func benchToken(b *testing.B, tokens *txntoken.Issuer) string {
	run := "spiffe://" + td.String() + "/agents/researcher/runs/01KBQ8XJ1Z6J7Q9W3E5R2T4Y6U"
	tok, _, err := tokens.Issue(txntoken.Claims{Subject: "alice", SponsorIssuer: "local",
		Audience: ToolServerID(td, "bench").String(), RunID: "01KBQ8XJ1Z6J7Q9W3E5R2T4Y6U",
		Txn: "0123456789abcdef0123456789abcdef", Actor: txntoken.NewActor([]string{run}),
		Scope:           txntoken.Scope{Server: "bench", Tool: "echo", Grant: "echo"},
		ArgumentsDigest: txntoken.ArgumentsDigest([]byte(`{"message":"hi"}`))})
	if err != nil {
		b.Fatal(err)
	}
	return tok
}

// BenchmarkGatewayOverhead times calls to the tool server directly and
// through the gateway, interleaved so both see the same machine load,
// and reports the latency the gateway adds at p50 and p99. A third call
// goes directly with a transaction token of the real size in _meta and
// in its header, to show what reading the token costs the tool server.
func BenchmarkGatewayOverhead(b *testing.B) {
	latest, sessions := mcp.LATEST_PROTOCOL_VERSION, mcp.ProtocolVersion20251125
	b.Run("sqlite-audit", func(b *testing.B) { benchOverhead(b, auditSQLite, latest) })
	b.Run("sqlite-audit-fsync", func(b *testing.B) { benchOverhead(b, auditSQLiteFsync, latest) })
	b.Run("memory-audit", func(b *testing.B) { benchOverhead(b, auditMemory, latest) })
	b.Run("sqlite-audit-sessions", func(b *testing.B) { benchOverhead(b, auditSQLite, sessions) })
}

func benchOverhead(b *testing.B, mode benchAudit, version string) {
	direct, through, tokens := benchStack(b, mode, version)
	token := benchToken(b, tokens)
	for range 200 {
		benchCall(b, direct, "echo")
		benchCall(b, through, "bench__echo")
	}
	d := make([]time.Duration, 0, b.N)
	g := make([]time.Duration, 0, b.N)
	k := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		benchCall(b, direct, "echo")
		t1 := time.Now()
		benchCall(b, through, "bench__echo")
		t2 := time.Now()
		benchCallWith(b, direct, "echo", token)
		d, g, k = append(d, t1.Sub(t0)), append(g, t2.Sub(t1)), append(k, time.Since(t2))
	}
	b.StopTimer()
	slices.Sort(d)
	slices.Sort(g)
	slices.Sort(k)
	p := func(s []time.Duration, q float64) float64 { return float64(s[int(q*float64(len(s)-1))].Microseconds()) }
	b.ReportMetric(p(k, .5), "direct-token-p50-µs")
	b.ReportMetric(p(k, .5)-p(d, .5), "token-read-p50-µs")
	b.ReportMetric(p(d, .5), "direct-p50-µs")
	b.ReportMetric(p(d, .99), "direct-p99-µs")
	b.ReportMetric(p(g, .5), "gateway-p50-µs")
	b.ReportMetric(p(g, .99), "gateway-p99-µs")
	b.ReportMetric(p(g, .5)-p(d, .5), "added-p50-µs")
	b.ReportMetric(p(g, .99)-p(d, .99), "added-p99-µs")
}

// BenchmarkGatewayThroughput runs 8 concurrent callers for a fixed time
// against the tool server directly and through the gateway, and reports
// both rates and their ratio.
func BenchmarkGatewayThroughput(b *testing.B) {
	direct, through, _ := benchStack(b, auditSQLite, mcp.LATEST_PROTOCOL_VERSION)
	const window = 2 * time.Second
	rate := func(c *client.Client, name string) float64 {
		var mu sync.Mutex
		total := 0
		var wg sync.WaitGroup
		deadline := time.Now().Add(window)
		for range 8 {
			wg.Go(func() {
				n := 0
				for time.Now().Before(deadline) {
					benchCall(b, c, name)
					n++
				}
				mu.Lock()
				total += n
				mu.Unlock()
			})
		}
		wg.Wait()
		return float64(total) / window.Seconds()
	}
	for range b.N {
		dr := rate(direct, "echo")
		gr := rate(through, "bench__echo")
		b.ReportMetric(dr, "direct-calls/s")
		b.ReportMetric(gr, "gateway-calls/s")
		b.ReportMetric(gr/dr, "ratio")
	}
}
