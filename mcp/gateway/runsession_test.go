package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentauth/agentauth/agentauth/config"
)

// abandonHeldCall starts a held call as c and makes its caller go away,
// returning once the tool server has seen the call end.
func abandonHeldCall(t *testing.T, rs *relayServer, c *client.Client, args string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = c.CallTool(ctx, callReq("calc__add", args))
	}()
	waitUntil(t, "the held call at the tool server", func() bool {
		for _, call := range rs.wire.calls() {
			if string(call.params["arguments"]) == args {
				return true
			}
		}
		return false
	})
	cancel()
	<-done
	select {
	case <-rs.held:
	case <-time.After(5 * time.Second):
		t.Fatal("the tool server never saw the abandoned call end")
	}
}

// TestOwnLogAfterOtherRunAbandons checks that run B still
// receives the log message its own call causes after run A abandoned a
// call on the same tool server. A run must not be able to silence the log
// messages of every other run on a shared server.
func TestOwnLogAfterOtherRunAbandons(t *testing.T) {
	rs := startRelayServer(t)
	h := sessionUpstream(t, rs.servers)
	a := h.client(t, runID(runA), "2025-11-25")
	b := h.client(t, runID(runB), "2025-11-25")
	bn := collect(b)

	abandonHeldCall(t, rs, a, `{"hold":"A"}`)
	if _, err := b.CallTool(context.Background(), callReq("calc__add", `{"mine":"B"}`)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for len(bn.of("notifications/message")) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := bn.of("notifications/message"); len(got) != 1 || got[0] != `{"mine":"B"}` {
		t.Errorf("run B's log messages after run A abandoned one call on the shared server: %q, "+
			`want its own {"mine":"B"}`, got)
	}
}

// TestOwnLogWhileOtherRunHolds checks that run B receives the
// log message its own call causes while run A holds a call open on the
// same server.
func TestOwnLogWhileOtherRunHolds(t *testing.T) {
	rs := startRelayServer(t)
	h := sessionUpstream(t, rs.servers)
	a := h.client(t, runID(runA), "2025-11-25")
	b := h.client(t, runID(runB), "2025-11-25")
	bn := collect(b)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _, _ = a.CallTool(ctx, callReq("calc__add", `{"hold":"A"}`)) }()
	waitUntil(t, "run A's held call", func() bool { return len(rs.wire.calls()) == 1 })
	if _, err := b.CallTool(context.Background(), callReq("calc__add", `{"mine":"B"}`)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for len(bn.of("notifications/message")) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := bn.of("notifications/message"); len(got) != 1 || got[0] != `{"mine":"B"}` {
		t.Errorf("run B's log messages while run A holds a call open on the shared server: %q, "+
			`want its own {"mine":"B"}`, got)
	}
}

// TestLateLogStaysWithItsRun checks that a log message a tool server
// sends for run B's job 5.5 s after B's call failed never reaches run A,
// whose call is then the only one in flight on the server.
func TestLateLogStaysWithItsRun(t *testing.T) {
	s := server.NewMCPServer("calc", "1", server.WithToolCapabilities(true), server.WithLogging())
	s.AddTool(mcp.NewToolWithRawSchema("add", "add", json.RawMessage(`{"type":"object"}`)),
		func(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			args := string(r.Params.RawArguments)
			if strings.Contains(args, "hold") {
				select {
				case <-ctx.Done():
				case <-time.After(8 * time.Second):
				}
				return echoArgs(ctx, r)
			}
			// A job that outlives the request which started it.
			sid := server.ClientSessionFromContext(ctx).SessionID()
			go func() {
				time.Sleep(5500 * time.Millisecond)
				_ = s.SendNotificationToSpecificClient(sid, "notifications/message",
					map[string]any{"level": "error", "data": "job finished for " + args})
			}()
			return nil, errors.New("gave up waiting; the job goes on")
		})
	ts := httptest.NewServer(server.NewStreamableHTTPServer(s))
	t.Cleanup(ts.Close)
	h := sessionUpstream(t, []config.Server{{Name: "calc", URL: ts.URL + "/mcp"}})
	a := h.client(t, runID(runA), "2025-11-25")
	b := h.client(t, runID(runB), "2025-11-25")
	an := collect(a)

	if _, err := b.CallTool(context.Background(), callReq("calc__add", `{"B-secret":1}`)); err == nil {
		t.Fatal("run B's call succeeded, want the tool server's error")
	}
	if _, err := a.CallTool(context.Background(), callReq("calc__add", `{"hold":"A"}`)); err != nil {
		t.Fatal(err)
	}
	for _, l := range an.of("notifications/message") {
		if strings.Contains(l, "B-secret") {
			t.Errorf("run A received run B's log message %q", l)
		}
	}
}
