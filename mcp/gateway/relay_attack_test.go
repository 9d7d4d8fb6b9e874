package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentauth/agentauth/agentauth/config"
	"github.com/agentauth/agentauth/mcp/txntoken"
	"github.com/agentauth/agentauth/mcp/upstream"
)

// relayServer is a Go tool server "calc". Its tool add logs its
// arguments and reports progress under the token it received, with the
// arguments as the message. Arguments containing "sample" make it request
// sampling, and arguments containing "hold" keep the call open until the
// caller goes away.
type relayServer struct {
	wire    *wire
	servers []config.Server
	held    chan string // the arguments of a held call whose caller went away
}

func startRelayServer(t *testing.T) *relayServer {
	t.Helper()
	rs := &relayServer{held: make(chan string, 16)}
	s := server.NewMCPServer("calc", "1", server.WithToolCapabilities(true), server.WithLogging())
	s.AddTool(mcp.NewToolWithRawSchema("add", "add", json.RawMessage(`{"type":"object"}`)),
		func(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			args := string(r.Params.RawArguments)
			srv := server.ServerFromContext(ctx)
			_ = srv.SendNotificationToClient(ctx, "notifications/message",
				map[string]any{"level": "error", "data": args})
			if r.Params.Meta != nil && r.Params.Meta.ProgressToken != nil {
				_ = srv.SendNotificationToClient(ctx, "notifications/progress", map[string]any{
					"progressToken": r.Params.Meta.ProgressToken, "progress": 1, "total": 2, "message": args})
			}
			if strings.Contains(args, "sample") {
				res, err := srv.RequestSampling(ctx, mcp.CreateMessageRequest{CreateMessageParams: mcp.CreateMessageParams{
					Messages: []mcp.SamplingMessage{{Role: mcp.RoleUser, Content: mcp.NewTextContent("sample for " + args)}}, MaxTokens: 5}})
				if err != nil {
					return mcp.NewToolResultError("sampling rejected: " + err.Error()), nil
				}
				b, _ := json.Marshal(res.Content)
				return mcp.NewToolResultText(string(b)), nil
			}
			if strings.Contains(args, "hold") {
				<-ctx.Done()
				rs.held <- args
				return nil, ctx.Err()
			}
			// Give mcp-go's server time to write the notifications, which it
			// does from a goroutine of its own, before the result.
			time.Sleep(100 * time.Millisecond)
			return echoArgs(ctx, r)
		})
	rs.wire = &wire{next: server.NewStreamableHTTPServer(s)}
	ts := httptest.NewServer(rs.wire)
	t.Cleanup(ts.Close)
	rs.servers = []config.Server{{Name: "calc", URL: ts.URL + "/mcp"}}
	return rs
}

// notes collects the notifications one client receives, by method.
type notes struct {
	mu  sync.Mutex
	got map[string][]string
}

func collect(c *client.Client) *notes {
	n := &notes{got: map[string][]string{}}
	c.OnNotification(func(m mcp.JSONRPCNotification) {
		var text string
		switch m.Method {
		case "notifications/message":
			text = fmt.Sprint(m.Params.AdditionalFields["data"])
		case "notifications/progress":
			text = fmt.Sprint(m.Params.AdditionalFields["progressToken"], " ", m.Params.AdditionalFields["message"])
		}
		n.mu.Lock()
		n.got[m.Method] = append(n.got[m.Method], text)
		n.mu.Unlock()
	})
	return n
}

func (n *notes) of(method string) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.got[method]...)
}

// TestRelayProgressTokensDoNotCross checks that runs choosing the same
// progress token, or one shaped like the gateway's own upstream tokens,
// each receive only their own call's progress.
func TestRelayProgressTokensDoNotCross(t *testing.T) {
	rs := startRelayServer(t)
	h := sessionUpstream(t, rs.servers)
	a := h.client(t, runID(runA), "2025-11-25")
	b := h.client(t, runID(runB), "2025-11-25")
	an, bn := collect(a), collect(b)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	breq := callReq("calc__add", `{"hold":"B-secret"}`)
	breq.Params.Meta = &mcp.Meta{ProgressToken: "p-1"}
	go func() { _, _ = b.CallTool(ctx, breq) }()
	waitUntil(t, "run B's held call", func() bool { return len(rs.wire.calls()) == 1 })
	var upstreamMeta struct {
		ProgressToken string `json:"progressToken"`
	}
	if err := json.Unmarshal(rs.wire.last(t).params["_meta"], &upstreamMeta); err != nil || upstreamMeta.ProgressToken == "" {
		t.Fatalf("run B's progress token on the wire: %q (%v)", upstreamMeta.ProgressToken, err)
	}
	waitUntil(t, "run B's own progress", func() bool { return len(bn.of("notifications/progress")) == 1 })

	for _, token := range []any{"p-1", upstreamMeta.ProgressToken, "agentauth-1", 1} {
		req := callReq("calc__add", fmt.Sprintf(`{"token":%q}`, fmt.Sprint(token)))
		req.Params.Meta = &mcp.Meta{ProgressToken: token}
		if _, err := a.CallTool(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "run A's progress", func() bool { return len(an.of("notifications/progress")) == 4 })
	for _, p := range an.of("notifications/progress") {
		if strings.Contains(p, "B-secret") {
			t.Errorf("run A received run B's progress %q", p)
		}
	}
	time.Sleep(200 * time.Millisecond)
	for _, p := range bn.of("notifications/progress") {
		if strings.Contains(p, "token") {
			t.Errorf("run B received run A's progress %q", p)
		}
	}
	if got := bn.of("notifications/progress"); len(got) != 1 || got[0] != `p-1 {"hold":"B-secret"}` {
		t.Errorf("run B's progress = %q, want only its own, under its own token", got)
	}
}

// TestMetaUnicodeFoldVariants checks _meta keys that differ from the
// transaction token's key, tracestate or progressToken only by a Unicode
// case fold (the Kelvin sign for k, the long s for s). encoding/json
// matches such a key to the struct field, so none may reach a tool server.
func TestMetaUnicodeFoldVariants(t *testing.T) {
	servers, calc, _ := startGoToolServers(t)
	h := newHarness(t, realUpstream(t, servers, upstream.Options{}))
	hc := h.ca.httpClient(t, runID(runA))
	sid := h.client(t, runID(runA), "2025-11-25").GetSessionId()
	const kelvin, longS = "\u212a", "\u017f"
	forgedToken := strings.Replace(txntoken.MetaKey, "k", kelvin, 1)
	forgedState := strings.Replace("tracestate", "s", longS, 1)
	forgedProgress := strings.Replace("progressToken", "s", longS, 1)
	for _, extra := range []string{
		fmt.Sprintf(`%q:"forged"`, forgedToken),
		fmt.Sprintf(`%q:"forged=1"`, forgedState),
		fmt.Sprintf(`%q:"agentauth-1"`, forgedProgress),
	} {
		before := len(calc.calls())
		for _, modern := range []bool{false, true} {
			hdr := map[string]string{"Mcp-Session-Id": sid}
			meta := `{` + extra + `}`
			if modern {
				hdr = map[string]string{"MCP-Protocol-Version": mcp.ProtocolVersion20260728,
					"Mcp-Method": "tools/call", "Mcp-Name": "calc__add"}
				meta = `{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},` + extra + `}`
			}
			h.post(t, hc, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calc__add","arguments":{},"_meta":`+meta+`}}`, hdr)
		}
		reached := calc.calls()[before:]
		if strings.Contains(extra, forgedToken) && len(reached) != 2 {
			t.Fatalf("%d of 2 calls with _meta %s reached the tool server, want both (the variants dropped)", len(reached), extra)
		}
		for _, got := range reached {
			var asGo struct {
				Token    string `json:"io.agentauth/txn-token"`
				State    string `json:"tracestate"`
				Progress any    `json:"progressToken"`
			}
			if err := json.Unmarshal(got.params["_meta"], &asGo); err != nil {
				t.Fatal(err)
			}
			if _, err := h.tokens.Verifier().Verify(asGo.Token, "spiffe://example.org/tools/calc"); err != nil {
				t.Errorf("id %s: a Go tool server reads transaction token %q from _meta %s: %v",
					got.id, asGo.Token, got.params["_meta"], err)
			}
			var members map[string]json.RawMessage
			_ = json.Unmarshal(got.params["_meta"], &members)
			for k := range members {
				for _, name := range []string{txntoken.MetaKey, "tracestate", "progressToken"} {
					if k != name && strings.EqualFold(k, name) {
						t.Errorf("id %s: _meta member %q, a fold variant of %q, reached the tool server", got.id, k, name)
					}
				}
			}
			if asGo.State == "forged=1" || asGo.Progress == "agentauth-1" {
				t.Errorf("id %s: a Go tool server reads the caller's fold variant in _meta %s", got.id, got.params["_meta"])
			}
		}
	}
}

// TestEscapedDuplicateArgumentRejected checks that an argument name
// written once plainly and once with a \u escape is rejected before
// authorization. Both decode to the same member, so the authorizer and the
// tool server could otherwise read different values.
func TestEscapedDuplicateArgumentRejected(t *testing.T) {
	servers, _, fs := startGoToolServers(t)
	h := newHarness(t, realUpstream(t, servers, upstream.Options{}))
	hc := h.ca.httpClient(t, runID(runA))
	call := func(args string) {
		t.Helper()
		h.post(t, hc, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fs__read","arguments":`+args+
			`,"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`,
			map[string]string{"MCP-Protocol-Version": mcp.ProtocolVersion20260728, "Mcp-Method": "tools/call", "Mcp-Name": "fs__read"})
	}
	call(`{"path":"/granted/x"}`)
	if len(fs.calls()) != 1 {
		t.Fatal("a granted read did not reach the tool server")
	}
	for _, args := range []string{
		`{"p\u0061th":"/etc/passwd","path":"/granted/x"}`,
		`{"path":"/granted/x","p\u0061th":"/etc/passwd"}`,
		`{"path":"/granted/x","pat\u0068":"/etc/passwd"}`,
	} {
		before := len(fs.calls())
		call(args)
		if len(fs.calls()) != before {
			t.Errorf("arguments %s reached the tool server as %s", args, fs.last(t).params["arguments"])
		}
	}
}

// TestRelayLogsStayWithTheirRun checks that run B receives the error-level
// log message of its own call but none of run A's while B holds a call
// open on the same server. It covers the direct path (no level set) and
// mcp-go's path (level debug).
func TestRelayLogsStayWithTheirRun(t *testing.T) {
	for _, level := range []mcp.LoggingLevel{"", mcp.LoggingLevelDebug} {
		t.Run("level="+string(level), func(t *testing.T) {
			rs := startRelayServer(t)
			h := sessionUpstream(t, rs.servers)
			a := h.client(t, runID(runA), "2025-11-25")
			b := h.client(t, runID(runB), "2025-11-25")
			bn := collect(b)
			if level != "" {
				req := mcp.SetLevelRequest{}
				req.Params.Level = level
				if err := b.SetLevel(context.Background(), req); err != nil {
					t.Fatal(err)
				}
			}

			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				_, _ = b.CallTool(ctx, callReq("calc__add", `{"hold":"B"}`))
			}()
			waitUntil(t, "run B's own log message", func() bool { return len(bn.of("notifications/message")) == 1 })
			direct := strings.HasPrefix(rs.wire.last(t).id, rawID)
			if direct != (level == "") {
				t.Errorf("run B's call served directly = %v at level %q", direct, level)
			}
			for i := range 20 {
				if _, err := a.CallTool(context.Background(), callReq("calc__add", fmt.Sprintf(`{"secret":%d}`, i))); err != nil {
					t.Fatal(err)
				}
			}
			cancel()
			<-done
			got := bn.of("notifications/message")
			if len(got) != 1 || got[0] != `{"hold":"B"}` {
				t.Errorf("run B's log messages = %q, want only its own {\"hold\":\"B\"}", got)
			}
		})
	}
}
