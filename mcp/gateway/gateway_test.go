package gateway

import (
	"context"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentauth/agentauth/mcp/txntoken"
)

var eras = []struct{ name, version string }{
	{"stateless 2026-07-28", ""},
	{"session 2025-11-25", "2025-11-25"},
	{"session 2025-06-18", "2025-06-18"},
	{"session 2025-03-26", "2025-03-26"},
}

func toolNames(t *testing.T, res *mcp.ListToolsResult) []string {
	t.Helper()
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
	}
	sort.Strings(names)
	return names
}

func TestListShowsOnlyGrantedTools(t *testing.T) {
	h := newHarness(t)
	for _, era := range eras {
		t.Run(era.name, func(t *testing.T) {
			ctx := context.Background()
			res, err := h.client(t, runID(runA), era.version).ListTools(ctx, mcp.ListToolsRequest{})
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"calc__add", "calc__block", "fs__changed", "fs__deploy", "fs__read", "fs__slow"}
			if got := toolNames(t, res); !slices.Equal(got, want) {
				t.Errorf("run A tools = %v, want %v", got, want)
			}
			res, err = h.client(t, runID(runB), era.version).ListTools(ctx, mcp.ListToolsRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if got := toolNames(t, res); !slices.Equal(got, []string{"calc__add"}) {
				t.Errorf("run B tools = %v, want [calc__add]", got)
			}
		})
	}
}

func callReq(name, args string) mcp.CallToolRequest {
	var r mcp.CallToolRequest
	r.Params.Name = name
	r.Params.Arguments = jsonRaw(args)
	return r
}

func TestAllowedCallForwardsExactArgumentsWithToken(t *testing.T) {
	h := newHarness(t)
	for _, era := range eras {
		t.Run(era.name, func(t *testing.T) {
			c := h.client(t, runID(runA), era.version)
			args := `{"path":"/granted/a.txt","n":9007199254740993}`
			res, err := c.CallTool(context.Background(), callReq("fs__read", args))
			if err != nil {
				t.Fatal(err)
			}
			if res.IsError {
				t.Fatalf("result is an error: %+v", res)
			}
			got := h.upstream.lastCall(t)
			if !strings.Contains(string(got.Arguments), "9007199254740993") || got.Server != "fs" || got.Name != "read" {
				t.Errorf("forwarded %s %s %s", got.Server, got.Name, got.Arguments)
			}
			m := meta(t, got)
			tok, _ := m[txntoken.MetaKey].(string)
			if tok == "" || got.Header.Get(txntoken.Header) != tok {
				t.Fatalf("token missing from _meta or header")
			}
			claims, err := h.tokens.Verifier().Verify(tok, "spiffe://example.org/tools/fs")
			if err != nil {
				t.Fatalf("forwarded token does not verify: %v", err)
			}
			if claims.RunID != runA || claims.Subject != "alice" || claims.Scope.Tool != "read" ||
				claims.ArgumentsDigest != txntoken.ArgumentsDigest(got.Arguments) {
				t.Errorf("claims = %+v", claims)
			}
			if _, ok := m["traceparent"]; !ok {
				t.Errorf("no traceparent forwarded in _meta: %v", m)
			}
		})
	}
}

func TestAuditDecisionBeforeForwardAndOutcomeAfter(t *testing.T) {
	h := newHarness(t)
	c := h.client(t, runID(runA), "")
	if _, err := c.CallTool(context.Background(), callReq("calc__add", `{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	h.gw.Flush()
	h.audit.mu.Lock()
	defer h.audit.mu.Unlock()
	if len(h.audit.decisions) != 1 || len(h.audit.outcomes) != 1 {
		t.Fatalf("decisions=%d outcomes=%d, want 1 and 1", len(h.audit.decisions), len(h.audit.outcomes))
	}
	d, o := h.audit.decisions[0], h.audit.outcomes[0]
	if d.Txn == "" || d.Txn != o.Txn || o.Outcome != "ok" || d.Decision.GrantID != "tool:calc/add" {
		t.Errorf("decision %+v outcome %+v", d, o)
	}
	if string(d.Arguments) != `{"a":1}` {
		t.Errorf("audit record arguments = %s, want the exact bytes", d.Arguments)
	}
}

func TestDenials(t *testing.T) {
	h := newHarness(t)
	hc := h.ca.httpClient(t, runID(runA))
	cases := []struct{ name, tool, args, reason string }{
		{"tool not granted", "fs__write", `{"path":"/granted/x"}`, "tool_not_granted"},
		{"condition false", "fs__read", `{"path":"/etc/passwd"}`, "condition_false"},
		{"definition changed", "fs__changed", `{}`, "tool_definition_changed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := h.upstream.callCount()
			status, body := h.post(t, hc, `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"`+
				tc.tool+`","arguments":`+tc.args+`}}`, nil)
			if status != 200 {
				t.Errorf("status = %d", status)
			}
			if got := denialReason(t, body); got != tc.reason {
				t.Errorf("reason = %q, want %q", got, tc.reason)
			}
			data := body["error"].(map[string]any)["data"].(map[string]any)
			if data["run_id"] != runA || body["id"].(float64) != 7 {
				t.Errorf("denial data = %v id = %v", data, body["id"])
			}
			if h.upstream.callCount() != before {
				t.Error("a denied call was forwarded")
			}
		})
	}
}

func TestQuarantinedToolIsInvisible(t *testing.T) {
	h := newHarness(t)
	c := h.client(t, runID(runA), "2025-11-25")
	_, errHidden := c.CallTool(context.Background(), callReq("fs__hidden", `{}`))
	_, errUnknown := c.CallTool(context.Background(), callReq("fs__nonexistent", `{}`))
	if errHidden == nil || errUnknown == nil {
		t.Fatal("calls to quarantined or unknown tools succeeded")
	}
	norm := strings.NewReplacer("fs__hidden", "X", "hidden", "X").Replace(errHidden.Error())
	if norm != strings.NewReplacer("fs__nonexistent", "X", "nonexistent", "X").Replace(errUnknown.Error()) {
		t.Errorf("quarantined %q differs from unknown %q", errHidden, errUnknown)
	}
	if h.upstream.callCount() != 0 {
		t.Error("forwarded a call to a quarantined tool")
	}
}

func TestAuditFailureDenies(t *testing.T) {
	h := newHarness(t)
	h.audit.fail = true
	status, body := h.post(t, h.ca.httpClient(t, runID(runA)),
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calc__add","arguments":{}}}`, nil)
	if got := denialReason(t, body); status != 200 || got != "audit_unavailable" {
		t.Errorf("status %d reason %q, want audit_unavailable", status, got)
	}
	if h.upstream.callCount() != 0 {
		t.Error("forwarded a call whose decision was not audited")
	}
}

func TestApprovals(t *testing.T) {
	deploy := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"fs__deploy","arguments":{}}}`
	t.Run("pending after the wait", func(t *testing.T) {
		h := newHarness(t, func(o *Options) {
			o.Approvals = fakeApprovals{"wait"}
			o.ApprovalURL = func(id string) string { return "https://gw.example.org/approvals/" + id }
		})
		_, body := h.post(t, h.ca.httpClient(t, runID(runA)), deploy, nil)
		if got := denialReason(t, body); got != "approval_required" {
			t.Fatalf("reason = %q", got)
		}
		data := body["error"].(map[string]any)["data"].(map[string]any)
		if data["approval_id"] != "ap-1" || !strings.HasSuffix(data["approval_url"].(string), "/ap-1") {
			t.Errorf("data = %v", data)
		}
	})
	t.Run("approved goes through once", func(t *testing.T) {
		h := newHarness(t, func(o *Options) { o.Approvals = fakeApprovals{"approve"} })
		c := h.client(t, runID(runA), "")
		if _, err := c.CallTool(context.Background(), callReq("fs__deploy", `{}`)); err != nil {
			t.Fatalf("approved call failed: %v", err)
		}
		_, body := h.post(t, h.ca.httpClient(t, runID(runA)), deploy, nil)
		if h.upstream.callCount() != 1 {
			t.Errorf("forwarded %d calls, want 1", h.upstream.callCount())
		}
		if r := denialReason(t, body); r != "approval_required" {
			t.Errorf("second use reason = %q, want approval_required (single use)", r)
		}
	})
	t.Run("denied", func(t *testing.T) {
		h := newHarness(t, func(o *Options) { o.Approvals = fakeApprovals{"deny"} })
		_, body := h.post(t, h.ca.httpClient(t, runID(runA)), deploy, nil)
		if got := denialReason(t, body); got != "approval_denied" {
			t.Errorf("reason = %q", got)
		}
	})
}

func TestProgressIsRelayed(t *testing.T) {
	h := newHarness(t)
	c := h.client(t, runID(runA), "2025-11-25")
	var mu sync.Mutex
	var got []float64
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == "notifications/progress" {
			mu.Lock()
			p, _ := n.Params.AdditionalFields["progress"].(float64)
			got = append(got, p)
			mu.Unlock()
		}
	})
	req := callReq("fs__slow", `{}`)
	req.Params.Meta = &mcp.Meta{ProgressToken: "tok-1"}
	if _, err := c.CallTool(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if pt := meta(t, h.upstream.lastCall(t))["progressToken"]; pt != "tok-1" {
		t.Errorf("forwarded progressToken = %v", pt)
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == 3 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("progress notifications = %v, want 3", got)
}

func TestPendingApprovalElicitsURLWhereSupported(t *testing.T) {
	h := newHarness(t, func(o *Options) {
		o.Approvals = fakeApprovals{"wait"}
		o.ApprovalURL = func(id string) string { return "https://gw.example.org/approvals/" + id }
	})
	hc := h.ca.httpClient(t, runID(runA))
	session := func(caps string) string {
		req, _ := http.NewRequest(http.MethodPost, h.url, strings.NewReader(
			`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25",`+
				`"capabilities":`+caps+`,"clientInfo":{"name":"t","version":"1"}}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		sid := resp.Header.Get("Mcp-Session-Id")
		h.post(t, hc, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, map[string]string{"Mcp-Session-Id": sid})
		return sid
	}
	deploy := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"fs__deploy","arguments":{}}}`

	_, body := h.post(t, hc, deploy, map[string]string{"Mcp-Session-Id": session(`{"elicitation":{"url":{}}}`)})
	e, _ := body["error"].(map[string]any)
	if code, _ := e["code"].(float64); code != mcp.URL_ELICITATION_REQUIRED {
		t.Fatalf("error = %v, want code %d", e, mcp.URL_ELICITATION_REQUIRED)
	}
	data := e["data"].(map[string]any)
	els := data["elicitations"].([]any)
	el := els[0].(map[string]any)
	if el["mode"] != "url" || el["url"] != "https://gw.example.org/approvals/ap-1" || data["reason"] != "approval_required" {
		t.Errorf("elicitation data = %v", data)
	}

	_, body = h.post(t, hc, deploy, map[string]string{"Mcp-Session-Id": session(`{}`)})
	if got := denialReason(t, body); got != "approval_required" {
		t.Errorf("client without URL elicitation: reason = %q", got)
	}
}

func TestCancellationReachesTheToolServer(t *testing.T) {
	h := newHarness(t)
	c := h.client(t, runID(runA), "2025-11-25")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := c.CallTool(ctx, callReq("calc__block", `{}`)); err == nil {
		t.Fatal("a blocked call returned without error")
	}
	select {
	case <-h.upstream.cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream call was not cancelled when the client gave up")
	}
}
