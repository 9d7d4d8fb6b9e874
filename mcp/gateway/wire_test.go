package gateway

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentauth/agentauth/mcp/txntoken"
	"github.com/agentauth/agentauth/mcp/upstream"
)

// TestArgumentsDigestMatchesWire checks that the token's args_sha256 is
// the digest of the argument bytes the tool server receives, on both paths.
func TestArgumentsDigestMatchesWire(t *testing.T) {
	servers, calc, _ := startGoToolServers(t)
	h := newHarness(t, realUpstream(t, servers, upstream.Options{}))
	hc := h.ca.httpClient(t, runID(runA))
	const args = `{"a": "<b>&", "c" : [1, 2]}`
	for _, progress := range []string{``, `,"progressToken":"p"`} {
		body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calc__add","arguments":` + args +
			`,"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}` + progress + `}}}`
		h.post(t, hc, body, map[string]string{"MCP-Protocol-Version": mcp.ProtocolVersion20260728,
			"Mcp-Method": "tools/call", "Mcp-Name": "calc__add"})
		got := calc.last(t)
		claims, err := h.tokens.Verifier().Verify(got.header.Get(txntoken.Header), "spiffe://example.org/tools/calc")
		if err != nil {
			t.Fatal(err)
		}
		if wire := txntoken.ArgumentsDigest(got.params["arguments"]); wire != claims.ArgumentsDigest {
			t.Errorf("id %s: the tool server received %s, whose digest %s is not the token's args_sha256 %s (of %s)",
				got.id, got.params["arguments"], wire, claims.ArgumentsDigest, args)
		}
	}
}

// TestDirectSessionStaysAlive checks that a session whose calls are served
// directly is not ended by mcp-go's idle timer, even when the client also
// posts responses, which mcp-go does not count as activity.
func TestDirectSessionStaysAlive(t *testing.T) {
	servers, calc, _ := startGoToolServers(t)
	const ttl = 400 * time.Millisecond
	h := newHarness(t, realUpstream(t, servers, upstream.Options{}), func(o *Options) { o.SessionIdleTTL = ttl })
	c := h.client(t, runID(runA), "2025-11-25")
	sid := c.GetSessionId()
	hc := h.ca.httpClient(t, runID(runA))
	start := time.Now()
	for time.Since(start) < 3*time.Second {
		h.post(t, hc, `{"jsonrpc":"2.0","id":"srv-1","result":{}}`, map[string]string{"Mcp-Session-Id": sid})
		if _, err := c.CallTool(context.Background(), callReq("calc__add", `{}`)); err != nil {
			t.Fatalf("after %v of calls every %v, all served directly (last id %s): %v",
				time.Since(start).Round(time.Millisecond), ttl/8, calc.last(t).id, err)
		}
		time.Sleep(ttl / 8)
	}
}

// TestMetaCaseVariantsDropped checks that a case variant of a reserved
// _meta key does not reach the tool server, where a Go struct would read it.
func TestMetaCaseVariantsDropped(t *testing.T) {
	servers, calc, _ := startGoToolServers(t)
	h := newHarness(t, realUpstream(t, servers, upstream.Options{}))
	c := h.client(t, runID(runA), "")
	for _, progress := range []any{nil, "p"} {
		req := callReq("calc__add", `{}`)
		req.Params.Meta = &mcp.Meta{ProgressToken: progress, AdditionalFields: map[string]any{
			"IO.modelcontextprotocol/clientCapabilities": map[string]any{"sampling": map[string]any{}}}}
		if _, err := c.CallTool(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		got := calc.last(t)
		var asGo struct {
			Caps json.RawMessage `json:"io.modelcontextprotocol/clientCapabilities"`
		}
		if err := json.Unmarshal(got.params["_meta"], &asGo); err != nil {
			t.Fatal(err)
		}
		if string(asGo.Caps) != `{}` {
			t.Errorf("id %s: a Go tool server decoding _meta into a struct reads client capabilities %s, "+
				"the caller's case variant instead of the gateway's {}", got.id, asGo.Caps)
		}
	}
}

// TestMalformedHeadersEchoRequestID checks that a request whose body
// decoded but whose headers disagree with it gets its own id back.
func TestMalformedHeadersEchoRequestID(t *testing.T) {
	h := newHarness(t)
	hc := h.ca.httpClient(t, runID(runA))
	body := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"calc__add","arguments":{}}}`
	status, out := h.post(t, hc, body, map[string]string{"MCP-Protocol-Version": mcp.ProtocolVersion20260728})
	if status != 400 {
		t.Errorf("status = %d, want 400", status)
	}
	if id, _ := out["id"].(float64); id != 7 {
		t.Errorf("error response id = %v, want the request's 7 (%v)", out["id"], out)
	}
}
