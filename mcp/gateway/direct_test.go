package gateway

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentauth/agentauth/agentauth/config"
	"github.com/agentauth/agentauth/mcp/txntoken"
	"github.com/agentauth/agentauth/mcp/upstream"
	"github.com/agentauth/agentauth/traces"
)

// rawID marks the JSON-RPC ids of calls the upstream set encodes itself;
// mcp-go's client numbers its requests instead.
const rawID = `"agentauth-`

// toolCall is one tools/call as a tool server received it.
type toolCall struct {
	id     string
	header http.Header
	params map[string]json.RawMessage
}

// wire records the tools/call requests that reach a tool server.
type wire struct {
	next http.Handler
	mu   sync.Mutex
	got  []toolCall
}

func (wr *wire) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	var msg struct {
		ID     json.RawMessage            `json:"id"`
		Method string                     `json:"method"`
		Params map[string]json.RawMessage `json:"params"`
	}
	if json.Unmarshal(body, &msg) == nil && msg.Method == "tools/call" {
		wr.mu.Lock()
		wr.got = append(wr.got, toolCall{id: string(msg.ID), header: r.Header.Clone(), params: msg.Params})
		wr.mu.Unlock()
	}
	wr.next.ServeHTTP(w, r)
}

func (wr *wire) calls() []toolCall {
	wr.mu.Lock()
	defer wr.mu.Unlock()
	return append([]toolCall(nil), wr.got...)
}

func (wr *wire) last(t *testing.T) toolCall {
	t.Helper()
	got := wr.calls()
	if len(got) == 0 {
		t.Fatal("the tool server received no tools/call")
	}
	return got[len(got)-1]
}

// echoArgs returns the exact argument bytes it received.
func echoArgs(_ context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return mcp.NewToolResultText(string(r.Params.RawArguments)), nil
}

// startGoToolServers serves two Go tool servers over Streamable HTTP on
// 127.0.0.1: calc (add echoes its arguments, block fails the request)
// and fs (read echoes, slow returns a tool error after any progress).
func startGoToolServers(t *testing.T) (servers []config.Server, calc, fs *wire) {
	t.Helper()
	start := func(name string, tools map[string]server.ToolHandlerFunc) *wire {
		s := server.NewMCPServer(name, "1", server.WithToolCapabilities(true), server.WithLogging())
		for tool, h := range tools {
			s.AddTool(mcp.NewToolWithRawSchema(tool, tool, json.RawMessage(`{"type":"object"}`)), h)
		}
		wr := &wire{next: server.NewStreamableHTTPServer(s)}
		ts := httptest.NewServer(wr)
		t.Cleanup(ts.Close)
		servers = append(servers, config.Server{Name: name, URL: ts.URL + "/mcp"})
		return wr
	}
	calc = start("calc", map[string]server.ToolHandlerFunc{
		"add": echoArgs,
		"block": func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return nil, errors.New("disk on fire")
		},
	})
	fs = start("fs", map[string]server.ToolHandlerFunc{
		"read":  echoArgs,
		"write": echoArgs,
		"slow": func(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			srv := server.ServerFromContext(ctx)
			_ = srv.SendLogMessageToClient(ctx, mcp.NewLoggingMessageNotification(mcp.LoggingLevelInfo, "fs", "halfway"))
			_ = srv.SendLogMessageToClient(ctx, mcp.NewLoggingMessageNotification(mcp.LoggingLevelError, "fs", "failing"))
			if r.Params.Meta != nil && r.Params.Meta.ProgressToken != nil {
				_ = server.ServerFromContext(ctx).SendNotificationToClient(ctx, "notifications/progress",
					map[string]any{"progressToken": r.Params.Meta.ProgressToken, "progress": 1, "total": 2})
			}
			// mcp-go's server writes notifications from a goroutine of its
			// own, so one sent just before the result can go out after it.
			time.Sleep(100 * time.Millisecond)
			return mcp.NewToolResultError("half done"), nil
		},
	})
	return servers, calc, fs
}

// realUpstream puts a real upstream set over the Go tool servers in front
// of the harness's gateway.
func realUpstream(t *testing.T, servers []config.Server, opts upstream.Options) func(*Options) {
	t.Helper()
	opts.DB = pinsDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	set, err := upstream.New(ctx, servers, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = set.Close() })
	return func(o *Options) { o.Upstream = set }
}

// pinsDB opens a SQLite file for the pin table as the gateway does, with
// WAL and a busy timeout, since servers list their tools concurrently.
func pinsDB(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "pins.db")+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func textOf(t *testing.T, res *mcp.CallToolResult) string {
	t.Helper()
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

func TestDirectCallForwardsAuthorizedBytes(t *testing.T) {
	servers, calc, _ := startGoToolServers(t)
	h := newHarness(t, realUpstream(t, servers, upstream.Options{}))
	args := `{"a":1,"n":9007199254740993,"s":"\u00e9"}`

	for _, era := range []struct {
		name, version string
		direct        bool
	}{{"stateless", "", true}, {"sessions", "2025-11-25", true}} {
		t.Run(era.name, func(t *testing.T) {
			c := h.client(t, runID(runA), era.version)
			req := callReq("calc__add", args)
			req.Params.Meta = &mcp.Meta{AdditionalFields: map[string]any{"x-client": json.RawMessage(`{"a":[1,"b",true]}`)}}
			res, err := c.CallTool(context.Background(), req)
			if err != nil || res.IsError {
				t.Fatalf("call: %v %+v", err, res)
			}
			if got := textOf(t, res); got != args {
				t.Errorf("tool server received %s, want the exact bytes %s", got, args)
			}
			got := calc.last(t)
			if direct := strings.HasPrefix(got.id, rawID); direct != era.direct {
				t.Errorf("request id %s: served directly = %v, want %v", got.id, direct, era.direct)
			}
			var meta map[string]any
			if err := json.Unmarshal(got.params["_meta"], &meta); err != nil {
				t.Fatalf("_meta on the wire: %v", err)
			}
			tok, _ := meta[txntoken.MetaKey].(string)
			if tok == "" || got.header.Get(txntoken.Header) != tok {
				t.Fatal("transaction token missing from _meta or the Txn-Token header")
			}
			claims, err := h.tokens.Verifier().Verify(tok, "spiffe://example.org/tools/calc")
			if err != nil {
				t.Fatalf("forwarded token does not verify: %v", err)
			}
			if claims.RunID != runA || claims.Scope.Tool != "add" || claims.ArgumentsDigest != txntoken.ArgumentsDigest(json.RawMessage(args)) {
				t.Errorf("claims = %+v", claims)
			}
			if _, ok := meta["traceparent"]; !ok {
				t.Errorf("no traceparent in the forwarded _meta: %v", meta)
			}
			var members map[string]json.RawMessage
			_ = json.Unmarshal(got.params["_meta"], &members)
			if got := string(members["x-client"]); got != `{"a":[1,"b",true]}` {
				t.Errorf("client's _meta member forwarded as %s, want its exact bytes", got)
			}
		})
	}
	h.gw.Flush()
	h.audit.mu.Lock()
	defer h.audit.mu.Unlock()
	if len(h.audit.decisions) != 2 || len(h.audit.outcomes) != 2 {
		t.Fatalf("decisions=%d outcomes=%d, want 2 and 2", len(h.audit.decisions), len(h.audit.outcomes))
	}
	decided := map[string]bool{}
	for _, d := range h.audit.decisions {
		decided[d.Txn] = true
	}
	// Outcomes are written off the response path, so in any order.
	for i, o := range h.audit.outcomes {
		if o.Outcome != "ok" || !decided[o.Txn] {
			t.Errorf("outcome %d = %+v, want ok for a decided transaction", i, o)
		}
	}
}

func TestDirectCallFailures(t *testing.T) {
	servers, calc, fs := startGoToolServers(t)
	h := newHarness(t, realUpstream(t, servers, upstream.Options{}))
	c := h.client(t, runID(runA), "")

	_, err := c.CallTool(context.Background(), callReq("calc__block", `{}`))
	if err == nil || !strings.Contains(err.Error(), `tool server "calc" failed`) || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("failing server: err = %v, want the server named with its message", err)
	}
	res, err := c.CallTool(context.Background(), callReq("fs__slow", `{}`))
	if err != nil || !res.IsError || textOf(t, res) != "half done" {
		t.Errorf("tool error: err %v, result %+v, want the tool's error result", err, res)
	}
	before := len(calc.calls()) + len(fs.calls())
	for _, call := range []mcp.CallToolRequest{
		callReq("fs__write", `{}`),                       // not granted
		callReq("fs__read", `{"path":"/etc/passwd"}`),    // condition false
		callReq("calc__add", `{"a":1,"a":2}`),            // duplicate key
		callReq("calc__add", `{"a":1,"A":2}`),            // case variant
		callReq("calc__nonexistent", `{}`),               // unknown tool
		callReq("calc__add", `{"nested":{"x":1,"x":1}}`), // duplicate inside
	} {
		if res, err := c.CallTool(context.Background(), call); err == nil && !res.IsError {
			t.Errorf("%s %s went through", call.Params.Name, call.Params.Arguments)
		}
	}
	if after := len(calc.calls()) + len(fs.calls()); after != before {
		t.Errorf("%d rejected calls reached a tool server", after-before)
	}

	h.gw.Flush()
	h.audit.mu.Lock()
	defer h.audit.mu.Unlock()
	outcomes := map[string]string{}
	for _, o := range h.audit.outcomes {
		outcomes[o.Target.Server+"/"+o.Target.Name] = o.Outcome
	}
	if outcomes["calc/block"] != "unavailable" || outcomes["fs/slow"] != "tool_error" {
		t.Errorf("outcomes = %v, want calc/block unavailable and fs/slow tool_error", outcomes)
	}
}

func TestGeneralPathForProgressAndSampling(t *testing.T) {
	servers, _, fs := startGoToolServers(t)
	h := newHarness(t, realUpstream(t, servers, upstream.Options{}))

	// A progress token needs mcp-go's server to relay the notifications.
	var mu sync.Mutex
	var progress []float64
	c := h.client(t, runID(runA), "")
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == "notifications/progress" {
			mu.Lock()
			p, _ := n.Params.AdditionalFields["progress"].(float64)
			progress = append(progress, p)
			mu.Unlock()
		}
	})
	req := callReq("fs__slow", `{}`)
	req.Params.Meta = &mcp.Meta{ProgressToken: "p-1"}
	if _, err := c.CallTool(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if id := fs.last(t).id; strings.HasPrefix(id, rawID) {
		t.Errorf("a call with a progress token was served directly (id %s)", id)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		got := append([]float64(nil), progress...)
		mu.Unlock()
		if len(got) == 1 && got[0] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("progress notifications = %v, want [1]", got)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A client that takes sampling requests may be asked for one.
	sampler := samplingClient(t, h)
	if _, err := sampler.CallTool(context.Background(), callReq("fs__read", `{"path":"/granted/x"}`)); err != nil {
		t.Fatal(err)
	}
	if id := fs.last(t).id; strings.HasPrefix(id, rawID) {
		t.Errorf("a call from a sampling client was served directly (id %s)", id)
	}
}

func TestSessionCallDirectOnlyWhenPlain(t *testing.T) {
	servers, calc, fs := startGoToolServers(t)
	var gw atomic.Pointer[Gateway]
	notify := func(ctx context.Context, server string, n mcp.JSONRPCNotification) {
		if g := gw.Load(); g != nil {
			g.Notify(ctx, server, n)
		}
	}
	const ttl = 800 * time.Millisecond
	// With a sampling relay the upstream set speaks a revision with
	// sessions, in which a tool server may send log messages unasked.
	sampling := func(context.Context, string, mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
		return nil, errors.New("not in this test")
	}
	h := newHarness(t, realUpstream(t, servers, upstream.Options{OnNotification: notify, Sampling: sampling}),
		func(o *Options) { o.SessionIdleTTL = ttl })
	gw.Store(h.gw)
	direct := func(w *wire) bool { return strings.HasPrefix(w.last(t).id, rawID) }

	// A log message the tool server sends during a direct call reaches the
	// client in the call's own response, which becomes an event stream. A
	// session that set no level gets errors only, as from mcp-go's server.
	var mu sync.Mutex
	var logs []string
	c := h.client(t, runID(runA), "2025-11-25")
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == "notifications/message" {
			mu.Lock()
			logs = append(logs, fmt.Sprint(n.Params.AdditionalFields["data"]))
			mu.Unlock()
		}
	})
	if _, err := c.CallTool(context.Background(), callReq("fs__slow", `{}`)); err != nil {
		t.Fatal(err)
	}
	if !direct(fs) {
		t.Fatalf("a plain session call was not served directly (id %s)", fs.last(t).id)
	}
	waitUntil(t, "the log message", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(logs) == 1 && logs[0] == "failing"
	})

	// After a quarter of the idle timeout without mcp-go serving the
	// session, a call goes through mcp-go, which keeps the session alive.
	time.Sleep(ttl/4 + 50*time.Millisecond)
	for i, want := range []bool{false, true} {
		if _, err := c.CallTool(context.Background(), callReq("calc__add", `{}`)); err != nil {
			t.Fatal(err)
		}
		if got := direct(calc); got != want {
			t.Errorf("call %d after an idle spell: served directly = %v, want %v", i, got, want)
		}
	}

	// A session that set a level goes through mcp-go, which passes it the
	// messages at or above that level.
	mu.Lock()
	logs = nil
	mu.Unlock()
	if err := c.SetLevel(context.Background(), mcp.SetLevelRequest{Params: mcp.SetLevelParams{Level: mcp.LoggingLevelDebug}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CallTool(context.Background(), callReq("fs__slow", `{}`)); err != nil {
		t.Fatal(err)
	}
	if direct(fs) {
		t.Error("a call of a session that set a logging level was served directly")
	}
	waitUntil(t, "both log messages", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Equal(logs, []string{"halfway", "failing"})
	})

	// A client that takes sampling requests may be asked for one.
	sampler := samplingClientAt(t, h, "2025-11-25")
	if _, err := sampler.CallTool(context.Background(), callReq("calc__add", `{}`)); err != nil {
		t.Fatal(err)
	}
	if direct(calc) {
		t.Error("a call from a session whose client takes sampling was served directly")
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// samplingClient connects a stateless mcp-go client that declares sampling.
func samplingClient(t *testing.T, h *harness) *client.Client {
	t.Helper()
	return samplingClientAt(t, h, mcp.LATEST_PROTOCOL_VERSION)
}

// samplingClientAt connects an mcp-go client that declares sampling, at a
// protocol version.
func samplingClientAt(t *testing.T, h *harness, version string) *client.Client {
	t.Helper()
	tr, err := transport.NewStreamableHTTP(h.url, transport.WithHTTPBasicClient(h.ca.httpClient(t, runID(runA))))
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr, client.WithSamplingHandler(rejectSampling{}), client.WithProtocolVersion(version))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = version
	req.Params.ClientInfo = mcp.Implementation{Name: "sampler", Version: "1"}
	if _, err := c.Initialize(ctx, req); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	return c
}

type rejectSampling struct{}

func (rejectSampling) CreateMessage(context.Context, mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	return nil, errors.New("this client does not sample")
}

func TestForwardingPathIsCountedAndTraced(t *testing.T) {
	servers, _, _ := startGoToolServers(t)
	reader := sdkmetric.NewManualReader()
	h := newHarness(t, realUpstream(t, servers, upstream.Options{}),
		func(o *Options) { o.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)) })

	c := h.client(t, runID(runA), "")
	if _, err := c.CallTool(context.Background(), callReq("calc__add", `{}`)); err != nil {
		t.Fatal(err)
	}
	req := callReq("calc__add", `{}`)
	req.Params.Meta = &mcp.Meta{ProgressToken: "p-1"}
	if _, err := c.CallTool(context.Background(), req); err != nil {
		t.Fatal(err)
	}

	counts := map[string]int64{}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == MetricToolCalls {
				for _, dp := range sum.DataPoints {
					v, _ := dp.Attributes.Value(traces.AttrForwarding)
					counts[v.AsString()] += dp.Value
				}
			}
		}
	}
	if counts["direct"] != 1 || counts["mcp"] != 1 {
		t.Errorf("%s by forwarding = %v, want direct 1 and mcp 1", MetricToolCalls, counts)
	}

	var paths []string
	for _, s := range h.spans.Ended() {
		if s.SpanKind() != trace.SpanKindServer {
			continue
		}
		for _, kv := range s.Attributes() {
			if kv.Key == traces.AttrForwarding {
				paths = append(paths, kv.Value.AsString())
			}
		}
	}
	slices.Sort(paths)
	if !slices.Equal(paths, []string{"direct", "mcp"}) {
		t.Errorf("server spans carry %s = %v, want direct and mcp", traces.AttrForwarding, paths)
	}
}
