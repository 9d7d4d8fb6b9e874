package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentauth/agentauth/agentauth/config"
	"github.com/agentauth/agentauth/mcp/upstream"
)

// TestLogMessagesStayWithTheirRun checks that log messages a shared tool
// server sends for run A's calls never reach run B's client, while B holds
// a call open on the same server.
func TestLogMessagesStayWithTheirRun(t *testing.T) {
	release := make(chan struct{})
	s := server.NewMCPServer("calc", "1", server.WithToolCapabilities(true), server.WithLogging())
	s.AddTool(mcp.NewToolWithRawSchema("add", "add", json.RawMessage(`{"type":"object"}`)),
		func(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			// At error level, which reaches even a session that set no level.
			_ = server.ServerFromContext(ctx).SendNotificationToClient(ctx, "notifications/message",
				map[string]any{"level": "error", "data": string(r.Params.RawArguments)})
			if strings.Contains(string(r.Params.RawArguments), "hold") {
				<-release
			}
			return echoArgs(ctx, r)
		})
	wr := &wire{next: server.NewStreamableHTTPServer(s)}
	ts := httptest.NewServer(wr)
	t.Cleanup(ts.Close)
	h := sessionUpstream(t, []config.Server{{Name: "calc", URL: ts.URL + "/mcp"}})
	var mu sync.Mutex
	var blogs []string
	a := h.client(t, runID(runA), "2025-11-25")
	b := h.client(t, runID(runB), "2025-11-25")
	b.OnNotification(func(n mcp.JSONRPCNotification) {
		mu.Lock()
		blogs = append(blogs, fmt.Sprint(n.Params.AdditionalFields["data"]))
		mu.Unlock()
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = b.CallTool(context.Background(), callReq("calc__add", `{"hold":1}`))
	}()
	waitUntil(t, "run B's call in flight", func() bool { return len(wr.calls()) == 1 })
	for i := range 200 {
		if _, err := a.CallTool(context.Background(), callReq("calc__add", fmt.Sprintf(`{"secret":%d}`, i))); err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	<-done
	mu.Lock()
	defer mu.Unlock()
	for _, l := range blogs {
		if strings.Contains(l, "secret") {
			t.Errorf("run B received run A's log message %s", l)
		}
	}
}

// recordSampling is a client's sampling handler that records what it was
// asked.
type recordSampling struct {
	mu   sync.Mutex
	seen []string
}

func (r *recordSampling) CreateMessage(_ context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	b, _ := json.Marshal(req.Messages)
	r.mu.Lock()
	r.seen = append(r.seen, string(b))
	r.mu.Unlock()
	return &mcp.CreateMessageResult{SamplingMessage: mcp.SamplingMessage{Role: mcp.RoleAssistant, Content: mcp.NewTextContent("B's model says hi")}, Model: "b"}, nil
}

// TestSamplingStaysWithItsRun checks that a sampling request a tool server
// sends for run A's call after A went away never reaches run B's client,
// while B's call is the only one in flight.
func TestSamplingStaysWithItsRun(t *testing.T) {
	release := make(chan struct{})
	answered := make(chan string, 1)
	s := server.NewMCPServer("calc", "1", server.WithToolCapabilities(true))
	s.AddTool(mcp.NewToolWithRawSchema("add", "add", json.RawMessage(`{"type":"object"}`)),
		func(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			args := string(r.Params.RawArguments)
			if strings.Contains(args, "hold") {
				<-release
				return echoArgs(ctx, r)
			}
			// A tool that finishes its work even when its caller goes away.
			<-ctx.Done()
			time.Sleep(100 * time.Millisecond)
			res, err := server.ServerFromContext(ctx).RequestSampling(context.WithoutCancel(ctx), mcp.CreateMessageRequest{
				CreateMessageParams: mcp.CreateMessageParams{Messages: []mcp.SamplingMessage{{Role: mcp.RoleUser, Content: mcp.NewTextContent("injected by " + args)}}, MaxTokens: 5}})
			answered <- fmt.Sprint(res, err)
			return echoArgs(ctx, r)
		})
	ts := httptest.NewServer(server.NewStreamableHTTPServer(s))
	t.Cleanup(ts.Close)
	var gw atomic.Pointer[Gateway]
	h := newHarness(t, realUpstream(t, []config.Server{{Name: "calc", URL: ts.URL + "/mcp"}}, upstream.Options{
		Sampling: func(ctx context.Context, srv string, r mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			if a, ok := ctx.Value(admittedKey{}).(*admitted); ok {
				t.Logf("sampling attributed to run %s", a.runID)
			}
			return gw.Load().Sampling(ctx, srv, r)
		}}))
	gw.Store(h.gw)

	rec := &recordSampling{}
	tr, _ := transport.NewStreamableHTTP(h.url, transport.WithHTTPBasicClient(h.ca.httpClient(t, runID(runB))), transport.WithContinuousListening())
	b := client.NewClient(tr, client.WithSamplingHandler(rec), client.WithProtocolVersion("2025-11-25"))
	ctx := context.Background()
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	ir := mcp.InitializeRequest{}
	ir.Params.ProtocolVersion = "2025-11-25"
	ir.Params.ClientInfo = mcp.Implementation{Name: "b", Version: "1"}
	ir.Params.Capabilities.Sampling = &mcp.SamplingCapability{}
	if _, err := b.Initialize(ctx, ir); err != nil {
		t.Fatal(err)
	}
	a := h.client(t, runID(runA), "2025-11-25")

	actx, cancel := context.WithCancel(ctx)
	go func() { _, _ = a.CallTool(actx, callReq("calc__add", `{"attacker":"A"}`)) }()
	time.Sleep(50 * time.Millisecond)
	bdone := make(chan struct{})
	go func() {
		defer close(bdone)
		if _, err := b.CallTool(ctx, callReq("calc__add", `{"hold":1}`)); err != nil {
			t.Errorf("run B's call: %v", err)
		}
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case r := <-answered:
		t.Logf("the tool server's sampling request got: %s", r)
	case <-time.After(3 * time.Second):
		t.Log("the tool server's sampling request got no answer within 3 s")
	}
	close(release)
	<-bdone
	select {
	case r := <-answered:
		t.Logf("the tool server's sampling request got, late: %s", r)
	case <-time.After(500 * time.Millisecond):
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, m := range rec.seen {
		if strings.Contains(m, "attacker") {
			t.Errorf("run B's client was asked to sample a message from run A's call: %s", m)
		}
	}
}
