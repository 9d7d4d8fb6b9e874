package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentauth/agentauth/agentauth/config"
	"github.com/agentauth/agentauth/mcp/txntoken"
	"github.com/agentauth/agentauth/mcp/upstream"
)

// indentEvents is a response writer that spreads each event-stream data
// line over several lines of indented JSON. The event-stream format allows
// this, and a reader joins the lines back with newlines.
type indentEvents struct{ http.ResponseWriter }

func (w indentEvents) Write(p []byte) (int, error) {
	if !strings.HasPrefix(w.Header().Get("Content-Type"), "text/event-stream") {
		return w.ResponseWriter.Write(p)
	}
	var out bytes.Buffer
	for _, line := range strings.SplitAfter(string(p), "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		var pretty bytes.Buffer
		if !ok || json.Indent(&pretty, []byte(strings.TrimSpace(data)), "", "  ") != nil {
			out.WriteString(line)
			continue
		}
		for _, l := range strings.Split(pretty.String(), "\n") {
			out.WriteString("data: " + l + "\n")
		}
	}
	if _, err := w.ResponseWriter.Write(out.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (w indentEvents) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// startLoggingServer serves a Go tool server "calc" behind wrap. Its tool
// add sends its arguments as a log message, then returns them.
func startLoggingServer(t *testing.T, wrap func(http.Handler) http.Handler) ([]config.Server, *wire) {
	t.Helper()
	s := server.NewMCPServer("calc", "1", server.WithToolCapabilities(true), server.WithLogging())
	s.AddTool(mcp.NewToolWithRawSchema("add", "add", json.RawMessage(`{"type":"object"}`)),
		func(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			_ = server.ServerFromContext(ctx).SendNotificationToClient(ctx, "notifications/message",
				map[string]any{"level": "info", "data": string(r.Params.RawArguments)})
			time.Sleep(50 * time.Millisecond)
			return echoArgs(ctx, r)
		})
	wr := &wire{next: server.NewStreamableHTTPServer(s)}
	ts := httptest.NewServer(wrap(wr))
	t.Cleanup(ts.Close)
	return []config.Server{{Name: "calc", URL: ts.URL + "/mcp"}}, wr
}

// sessionUpstream starts a harness whose upstream set speaks the protocol
// revision with sessions, where a tool server may send log messages
// without a request for them. The set relays them to the gateway's Notify.
func sessionUpstream(t *testing.T, servers []config.Server, mutate ...func(*Options)) *harness {
	t.Helper()
	var gw atomic.Pointer[Gateway]
	notify := func(ctx context.Context, server string, n mcp.JSONRPCNotification) {
		if g := gw.Load(); g != nil {
			g.Notify(ctx, server, n)
		}
	}
	sampling := func(context.Context, string, mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
		return nil, errors.New("sampling is not supported in this test")
	}
	h := newHarness(t, append([]func(*Options){realUpstream(t, servers,
		upstream.Options{OnNotification: notify, Sampling: sampling})}, mutate...)...)
	gw.Store(h.gw)
	return h
}

func TestDirectStreamMultiLineResult(t *testing.T) {
	servers, calc := startLoggingServer(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(indentEvents{w}, r)
		})
	})
	h := sessionUpstream(t, servers)
	c := h.client(t, runID(runA), "2025-11-25")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := c.CallTool(ctx, callReq("calc__add", `{"x":1}`))
	if id := calc.last(t).id; !strings.HasPrefix(id, rawID) {
		t.Fatalf("the call was not forwarded directly (id %s)", id)
	}
	if err != nil {
		t.Fatalf("a result sent over several event-stream data lines was lost: %v", err)
	}
	if got := textOf(t, res); got != `{"x":1}` {
		t.Errorf("result text %q", got)
	}
}

// modernCall posts a tools/call of calc__add at protocol version
// 2026-07-28 with the given _meta. Headers in hdr replace the defaults.
func modernCall(t *testing.T, h *harness, hc *http.Client, meta string, hdr map[string]string) (int, map[string]any) {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"calc__add","arguments":{"x":1},"_meta":` + meta + `}}`
	all := map[string]string{"MCP-Protocol-Version": mcp.ProtocolVersion20260728,
		"Mcp-Method": "tools/call", "Mcp-Name": "calc__add"}
	for k, v := range hdr {
		all[k] = v
	}
	return h.post(t, hc, body, all)
}

func TestDirectRejectsInvalidModernCalls(t *testing.T) {
	servers, calc, _ := startGoToolServers(t)
	h := newHarness(t, realUpstream(t, servers, upstream.Options{}))
	hc := h.ca.httpClient(t, runID(runA))
	const plain = `{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}`

	if status, out := modernCall(t, h, hc, plain, nil); status != http.StatusOK || out["result"] == nil {
		t.Fatalf("plain call: %d %v", status, out)
	}
	if id := calc.last(t).id; !strings.HasPrefix(id, rawID) {
		t.Fatalf("the plain call was not forwarded directly (id %s)", id)
	}
	before := len(calc.calls())
	for _, c := range []struct {
		name string
		meta string
		hdr  map[string]string
	}{
		{"Last-Event-ID on a POST", plain, map[string]string{"Last-Event-ID": "3"}},
		{"a body that is not JSON by its Content-Type", plain, map[string]string{"Content-Type": "text/plain"}},
		{"header and _meta versions differ",
			`{"io.modelcontextprotocol/protocolVersion":"2025-11-25","io.modelcontextprotocol/clientCapabilities":{}}`, nil},
		{"no protocol version in _meta", `{"io.modelcontextprotocol/clientCapabilities":{}}`, nil},
		{"no client capabilities in _meta", `{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}`, nil},
		{"capabilities that are not an object",
			`{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":[]}`, nil},
		{"a protocol version that is not a string",
			`{"io.modelcontextprotocol/protocolVersion":20260728,"io.modelcontextprotocol/clientCapabilities":{}}`, nil},
	} {
		status, out := modernCall(t, h, hc, c.meta, c.hdr)
		if status != http.StatusBadRequest {
			t.Errorf("%s: status %d %v, want 400 as from mcp-go", c.name, status, out)
		}
	}
	if after := len(calc.calls()); after != before {
		t.Errorf("%d calls that mcp-go rejects reached the tool server", after-before)
	}
}

func TestDirectEndedOrForeignSession(t *testing.T) {
	servers, calc, _ := startGoToolServers(t)
	h := newHarness(t, realUpstream(t, servers, upstream.Options{}))
	owner := h.client(t, runID(runA), "2025-11-25")
	sid := owner.GetSessionId()
	if _, err := owner.CallTool(context.Background(), callReq("calc__add", `{}`)); err != nil {
		t.Fatal(err)
	}
	if id := calc.last(t).id; !strings.HasPrefix(id, rawID) {
		t.Fatalf("the owner's call was not forwarded directly (id %s)", id)
	}
	before := len(calc.calls())
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calc__add","arguments":{}}}`

	// Run B has a grant for calc/add too, but not run A's session.
	if status, out := h.post(t, h.ca.httpClient(t, runID(runB)), body, map[string]string{"Mcp-Session-Id": sid}); status != http.StatusNotFound {
		t.Errorf("run B on run A's session: %d %v, want 404", status, out)
	}
	req, _ := http.NewRequest(http.MethodDelete, h.url, nil)
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	resp, err := h.ca.httpClient(t, runID(runA)).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE of the owner's session: status %d", resp.StatusCode)
	}
	if status, out := h.post(t, h.ca.httpClient(t, runID(runA)), body, map[string]string{"Mcp-Session-Id": sid}); status != http.StatusNotFound {
		t.Errorf("a call on a terminated session: %d %v, want 404", status, out)
	}
	if after := len(calc.calls()); after != before {
		t.Errorf("%d calls on a foreign or ended session reached the tool server", after-before)
	}
}

func TestDirectFailureLeaksNoToken(t *testing.T) {
	servers, calc, fs := startGoToolServers(t)
	logs := &syncBuffer{}
	h := newHarness(t, realUpstream(t, servers, upstream.Options{}), func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	hc := h.ca.httpClient(t, runID(runA))
	const plain = `{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}`
	var answers []string
	for _, name := range []string{"calc__add", "calc__block", "fs__slow"} {
		body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + name + `","arguments":{},"_meta":` + plain + `}}`
		_, out := h.post(t, hc, body, map[string]string{"MCP-Protocol-Version": mcp.ProtocolVersion20260728,
			"Mcp-Method": "tools/call", "Mcp-Name": name})
		b, _ := json.Marshal(out)
		answers = append(answers, string(b))
	}

	if !strings.Contains(answers[1], "disk on fire") {
		t.Fatalf("failing call returned %s, expected the server's error message", answers[1])
	}

	h.gw.Flush()
	var tokens []string
	for _, c := range append(calc.calls(), fs.calls()...) {
		if !strings.HasPrefix(c.id, rawID) {
			t.Fatalf("a call was not forwarded directly (id %s)", c.id)
		}
		tok := c.header.Get(txntoken.Header)
		if tok == "" {
			t.Fatalf("call %s reached the tool server without a %s header", c.id, txntoken.Header)
		}
		tokens = append(tokens, tok)
	}
	if len(tokens) != 3 {
		t.Fatalf("%d calls reached the tool servers, want 3", len(tokens))
	}

	h.audit.mu.Lock()
	var records []string
	for _, r := range append(append([]Record(nil), h.audit.decisions...), h.audit.outcomes...) {
		records = append(records, r.Error, r.Decision.Message)
	}
	h.audit.mu.Unlock()
	places := map[string]string{"log": logs.String(), "responses": strings.Join(answers, "\n"),
		"audit": strings.Join(records, "\n")}
	for where, text := range places {
		for _, tok := range tokens {
			if strings.Contains(text, tok) {
				t.Errorf("the %s contains a transaction token", where)
			}
			if strings.Contains(text, tok[strings.LastIndex(tok, ".")+1:]) {
				t.Errorf("the %s contains a transaction token's signature", where)
			}
		}
	}
}

func TestDirectCancelReachesToolServer(t *testing.T) {
	started, stopped := make(chan struct{}, 1), make(chan struct{}, 1)
	s := server.NewMCPServer("calc", "1", server.WithToolCapabilities(true))
	s.AddTool(mcp.NewToolWithRawSchema("add", "add", json.RawMessage(`{"type":"object"}`)),
		func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			started <- struct{}{}
			<-ctx.Done()
			stopped <- struct{}{}
			return nil, ctx.Err()
		})
	wr := &wire{next: server.NewStreamableHTTPServer(s)}
	ts := httptest.NewServer(wr)
	t.Cleanup(ts.Close)
	h := newHarness(t, realUpstream(t, []config.Server{{Name: "calc", URL: ts.URL + "/mcp"}}, upstream.Options{}))
	c := h.client(t, runID(runA), "")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.CallTool(ctx, callReq("calc__add", `{}`))
		done <- err
	}()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("the call never reached the tool server")
	}
	if id := wr.last(t).id; !strings.HasPrefix(id, rawID) {
		t.Fatalf("the call was not forwarded directly (id %s)", id)
	}
	cancel()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("the tool server did not see the cancellation within 5s")
	}
	<-done
	waitUntil(t, "the outcome record", func() bool {
		h.audit.mu.Lock()
		defer h.audit.mu.Unlock()
		return len(h.audit.outcomes) == 1
	})
	h.audit.mu.Lock()
	defer h.audit.mu.Unlock()
	if o := h.audit.outcomes[0]; o.Outcome != "canceled" {
		t.Errorf("outcome of a cancelled call: %q (%s), want canceled", o.Outcome, o.Error)
	}
}

func TestDirectEchoesRequestID(t *testing.T) {
	servers, calc, _ := startGoToolServers(t)
	h := newHarness(t, realUpstream(t, servers, upstream.Options{}))
	hc := h.ca.httpClient(t, runID(runA))
	const plain = `{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}`
	hdr := map[string]string{"MCP-Protocol-Version": mcp.ProtocolVersion20260728,
		"Mcp-Method": "tools/call", "Mcp-Name": "calc__add"}

	for _, id := range []string{`9007199254740993`, `"a\"b\u00e9"`, `-0`} {
		body := `{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":"calc__add","arguments":{},"_meta":` + plain + `}}`
		req, _ := http.NewRequest(http.MethodPost, h.url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw := readAll(resp)
		resp.Body.Close()

		if wireID := calc.last(t).id; !strings.HasPrefix(wireID, rawID) {
			t.Fatalf("id %s: the call was not forwarded directly (upstream id %s)", id, wireID)
		}
		if !strings.HasPrefix(raw, `{"jsonrpc":"2.0","id":`+id+`,`) {
			t.Errorf("id %s: response %s does not carry the request's id as sent", id, raw)
		}
		if strings.Contains(raw, strings.Trim(rawID, `"`)) {
			t.Errorf("id %s: response %s carries the upstream request id", id, raw)
		}
	}
}

func TestSessionCallsNotPlainUseMCPGo(t *testing.T) {
	servers, calc, _ := startGoToolServers(t)
	h := newHarness(t, realUpstream(t, servers, upstream.Options{}))
	c := h.client(t, runID(runA), "2025-11-25")
	sid := c.GetSessionId()
	hc := h.ca.httpClient(t, runID(runA))
	call := func(params string) string {
		return `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"calc__add","arguments":{}` + params + `}}`
	}

	if status, out := h.post(t, hc, call(""), map[string]string{"Mcp-Session-Id": sid}); status != http.StatusOK || out["result"] == nil {
		t.Fatalf("plain session call: %d %v", status, out)
	}
	if id := calc.last(t).id; !strings.HasPrefix(id, rawID) {
		t.Fatalf("a plain session call was not forwarded directly (id %s)", id)
	}
	for _, c := range []struct {
		name, params string
		hdr          map[string]string
	}{
		{"a reserved _meta key", `,"_meta":{"io.modelcontextprotocol/logLevel":"debug"}`, nil},
		{"a progress token", `,"_meta":{"progressToken":"p"}`, nil},
		{"a task", `,"task":{"ttl":1000}`, nil},
		{"Last-Event-ID", "", map[string]string{"Last-Event-ID": "1"}},
		{"no protocol version header", "", map[string]string{"MCP-Protocol-Version": ""}},
	} {
		hdr := map[string]string{"Mcp-Session-Id": sid}
		for k, v := range c.hdr {
			hdr[k] = v
		}
		before := len(calc.calls())
		h.post(t, hc, call(c.params), hdr)
		got := calc.calls()
		if len(got) > before && strings.HasPrefix(got[len(got)-1].id, rawID) {
			t.Errorf("a session call with %s was forwarded directly", c.name)
		}
	}
}
