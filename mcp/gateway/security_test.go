package gateway

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"

	"github.com/agentauth/agentauth/agentauth/authz"
	"github.com/agentauth/agentauth/mcp/txntoken"
	"github.com/agentauth/agentauth/spiffe"
	"github.com/agentauth/agentauth/spiffe/ca"
)

func TestHostileBodiesAreRefusedBeforeForwarding(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxBodyBytes = 2048 })
	hc := h.ca.httpClient(t, runID(runA))
	call := func(params string) string {
		return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":` + params + `}`
	}
	cases := []struct {
		name   string
		body   string
		hdr    map[string]string
		status int
	}{
		{"duplicate name", call(`{"name":"calc__add","name":"fs__write","arguments":{}}`), nil, 400},
		{"case variant of name", call(`{"name":"calc__add","Name":"fs__write","arguments":{}}`), nil, 400},
		{"case variant of method", `{"jsonrpc":"2.0","id":1,"Method":"ping","method":"tools/call","params":{"name":"calc__add"}}`, nil, 400},
		{"duplicate inside arguments", call(`{"name":"calc__add","arguments":{"a":1,"a":2}}`), nil, 400},
		{"case variant inside arguments", call(`{"name":"fs__read","arguments":{"path":"/granted/a","PATH":"/etc/hostname"}}`), nil, 400},
		{"kelvin variant nested in arguments", call(`{"name":"fs__read","arguments":{"o":[{"k":1,"\u212a":2}]}}`), nil, 400},
		{"batch", `[` + call(`{"name":"calc__add","arguments":{}}`) + `]`, nil, 400},
		{"trailing data", call(`{"name":"calc__add","arguments":{}}`) + `{}`, nil, 400},
		{"invalid utf-8", call(`{"name":"calc__add","arguments":{"a":"` + "\xff" + `"}}`), nil, 400},
		{"oversized", call(`{"name":"calc__add","arguments":{"a":"` + strings.Repeat("x", 4096) + `"}}`), nil, 413},
		{"unsupported encoding", call(`{"name":"calc__add","arguments":{}}`), map[string]string{"Content-Encoding": "br"}, 415},
		{"Mcp-Method mismatch", call(`{"name":"calc__add","arguments":{}}`), map[string]string{"Mcp-Method": "tools/list"}, 400},
		{"Mcp-Name mismatch", call(`{"name":"calc__add","arguments":{}}`), map[string]string{"Mcp-Name": "fs__read"}, 400},
		{"arguments not an object", call(`{"name":"calc__add","arguments":[1]}`), nil, 400},
		{"2026-07-28 without Mcp-Method", call(`{"name":"calc__add","arguments":{}}`),
			map[string]string{"MCP-Protocol-Version": "2026-07-28"}, 400},
		{"2026-07-28 without Mcp-Name", call(`{"name":"calc__add","arguments":{}}`),
			map[string]string{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call"}, 400},
		{"2026-07-28 with a mismatched Mcp-Name", call(`{"name":"calc__add","arguments":{}}`),
			map[string]string{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "fs__write"}, 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h.audit.records())
			status, body := h.post(t, hc, tc.body, tc.hdr)
			checkMalformedRecord(t, h.audit.records()[before:], replyMessage(body))
			if status != tc.status {
				t.Errorf("status = %d, want %d (%v)", status, tc.status, body)
			}
			e, _ := body["error"].(map[string]any)
			data, _ := e["data"].(map[string]any)
			if data["reason"] != string(authz.ReasonMalformedRequest) {
				t.Errorf("error = %v, want reason malformed_request", e)
			}
		})
	}
	if n := h.upstream.callCount(); n != 0 {
		t.Errorf("%d hostile calls were forwarded", n)
	}
	for _, r := range h.authz.requests {
		if r.Target.Kind != "" || r.Arguments != nil {
			t.Errorf("a hostile body reached authorization: %+v", r)
		}
	}
}

func replyMessage(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

// checkMalformedRecord wants exactly one audit record, of the malformed
// request answered with message, naming the caller and its chain.
func checkMalformedRecord(t *testing.T, recs []Record, message string) {
	t.Helper()
	if len(recs) != 1 {
		t.Fatalf("%d audit records for one malformed request, want 1: %+v", len(recs), recs)
	}
	r := recs[0]
	d := r.Decision
	switch {
	case !r.Malformed || d.Effect != authz.Deny || d.Reason != authz.ReasonMalformedRequest:
		t.Errorf("record %+v is not a malformed-request denial", r)
	case r.Caller != runID(runA) || r.RunID != runA || len(d.Chain) == 0 || d.Chain[len(d.Chain)-1].SPIFFEID != runID(runA):
		t.Errorf("record names caller %q run %q chain %v, want %s", r.Caller, r.RunID, d.Chain, runID(runA))
	case d.Message != message:
		t.Errorf("record message %q, want the reply's %q", d.Message, message)
	case r.Arguments != nil || r.ArgumentsDigest != "" || r.Target.Kind != "" || r.Target.Name != "":
		t.Errorf("record of a malformed request holds body content: %+v", r)
	}
}

func TestGzipBombIsBoundedBySizeLimit(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxBodyBytes = 4096 })
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calc__add","arguments":{"a":"` +
		strings.Repeat("a", 1<<20) + `"}}}`))
	_ = zw.Close()
	req, _ := http.NewRequest(http.MethodPost, h.url, &buf)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	resp, err := h.ca.httpClient(t, runID(runA)).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("status = %d, want 413", resp.StatusCode)
	}
}

func TestAuthentication(t *testing.T) {
	h := newHarness(t)
	human := "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(
		[]byte(`{"iss":"https://idp.example.org","sub":"alice@example.org","aud":"agentauth"}`)) + ".c2ln"
	other := newTestCA(t) // a CA the gateway does not trust
	cases := []struct {
		name    string
		client  *http.Client
		auth    string
		message string
	}{
		{"no credential", h.ca.httpClient(t, ""), "", "no credential"},
		{"human OIDC token", h.ca.httpClient(t, ""), "Bearer " + human, "control API"},
		{"static API key", h.ca.httpClient(t, ""), "Bearer sk-live-123", "not enabled"},
		{"SVID of a non-run path", h.ca.httpClient(t, "spiffe://example.org/workloads/x"), "", "neither a run"},
		{"SVID of another trust domain", h.ca.httpClient(t, "spiffe://evil.org/agents/r/runs/1"), "", "outside trust domain"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tc.auth != "" {
				hdr["Authorization"] = tc.auth
			}
			status, body := h.post(t, tc.client, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, hdr)
			if status != http.StatusUnauthorized {
				t.Fatalf("status = %d, want 401: %v", status, body)
			}
			e := body["error"].(map[string]any)
			if !strings.Contains(e["message"].(string), tc.message) {
				t.Errorf("message %q does not say %q", e["message"], tc.message)
			}
		})
	}
	t.Run("certificate from an untrusted CA", func(t *testing.T) {
		cfg := &tls.Config{RootCAs: h.ca.pool, Certificates: []tls.Certificate{other.mint(t, runID(runA))}}
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
		resp, err := hc.Post(h.url, "application/json", strings.NewReader(`{}`))
		if err == nil {
			resp.Body.Close()
			t.Fatal("handshake with an untrusted client certificate succeeded")
		}
	})
}

// TestEmbeddedCAmTLSAndJWTSVID runs the gateway with the embedded SPIFFE CA:
// mTLS with a run SVID signed from a CSR, and a JWT-SVID bearer.
func TestEmbeddedCAmTLSAndJWTSVID(t *testing.T) {
	ctx := context.Background()
	authority, err := ca.Open(ctx, ca.Config{Dir: t.TempDir(), TrustDomain: td,
		SVIDTTL: 10 * time.Minute, JWTTTL: 5 * time.Minute, SigningTTL: time.Hour, RootTTL: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = authority.Close() })
	h := newHarness(t)
	h2, err := New(Options{TrustDomain: td, Authorizer: h.authz, Auditor: h.audit, Upstream: h.upstream,
		Tokens: h.tokens, JWT: JWTSVIDs(authority)})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		_ = h2.Serve(sctx, ln, AllowBearer(spiffe.ServerTLSConfig(authority)), time.Second)
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })
	url := "https://" + ln.Addr().String() + Path

	runA, _ := spiffeid.FromString(runID(runA))
	serverName := func(cfg *tls.Config) *tls.Config {
		base := tlsconfig.TLSClientConfig(authority, tlsconfig.AuthorizeID(GatewayID(td)))
		base.Certificates = cfg.Certificates
		return base
	}

	t.Run("mTLS with a run SVID from a CSR", func(t *testing.T) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
		chain, err := authority.SignRunCSR(ctx, der, runA, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		cert := tls.Certificate{PrivateKey: key}
		for _, c := range chain {
			cert.Certificate = append(cert.Certificate, c.Raw)
		}
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: serverName(&tls.Config{Certificates: []tls.Certificate{cert}})}}
		c := mcpClient(t, url, transport.WithHTTPBasicClient(hc))
		res, err := c.ListTools(ctx, mcp.ListToolsRequest{})
		if err != nil || len(res.Tools) != 6 {
			t.Fatalf("tools/list = %v, %v", res, err)
		}
	})
	t.Run("JWT-SVID bearer", func(t *testing.T) {
		tok, err := authority.MintJWTSVID(ctx, runA, GatewayID(td).String(), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: serverName(&tls.Config{})}}
		c := mcpClient(t, url, transport.WithHTTPBasicClient(hc),
			transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + tok}))
		if _, err := c.CallTool(ctx, callReq("calc__add", `{"a":1}`)); err != nil {
			t.Fatalf("call with JWT-SVID: %v", err)
		}
		wrongAud, _ := authority.MintJWTSVID(ctx, runA, "spiffe://example.org/tools/fs", time.Minute)
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
		req.Header.Set("Authorization", "Bearer "+wrongAud)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("JWT-SVID for another audience: status %d, want 401", resp.StatusCode)
		}
	})
}

func TestSessionsAreBoundToTheirCreator(t *testing.T) {
	h := newHarness(t)
	owner := h.client(t, runID(runA), "2025-11-25")
	sid := owner.GetSessionId()
	if sid == "" {
		t.Fatal("no session id issued")
	}
	ask := func(hc *http.Client, method, session string) (int, string) {
		var body *strings.Reader
		if method == http.MethodPost {
			body = strings.NewReader(`{"jsonrpc":"2.0","id":9,"method":"tools/list"}`)
		} else {
			body = strings.NewReader("")
		}
		req, _ := http.NewRequest(method, h.url, body)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("MCP-Protocol-Version", "2025-11-25")
		req.Header.Set("Mcp-Session-Id", session)
		if method == http.MethodGet {
			req.Header.Set("Last-Event-ID", "0")
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode, readAll(resp)
	}
	other := h.ca.httpClient(t, runID(runB))
	for _, method := range []string{http.MethodPost, http.MethodGet, http.MethodDelete} {
		stolenStatus, stolenBody := ask(other, method, sid)
		unknownStatus, unknownBody := ask(other, method, "mcp-session-00000000000000000000000000000000")
		if stolenStatus != unknownStatus || stolenBody != unknownBody {
			t.Errorf("%s: stolen session answered %d %q, unknown %d %q", method, stolenStatus, stolenBody, unknownStatus, unknownBody)
		}
		if stolenStatus != http.StatusNotFound {
			t.Errorf("%s with another caller's session: status %d, want 404", method, stolenStatus)
		}
	}
	if _, err := owner.ListTools(context.Background(), mcp.ListToolsRequest{}); err != nil {
		t.Errorf("owner lost its session: %v", err)
	}
}

func TestChainedCallsThroughToolServers(t *testing.T) {
	h := newHarness(t)
	c := h.client(t, runID(runA), "")
	if _, err := c.CallTool(context.Background(), callReq("fs__read", `{"path":"/granted/a"}`)); err != nil {
		t.Fatal(err)
	}
	token := h.upstream.lastCall(t).Header.Get(txntoken.Header)
	body := `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"calc__add","arguments":{"a":2}}}`

	forger, _ := txntoken.NewIssuer(GatewayID(td).String(), time.Minute)
	forged, _, _ := forger.Issue(txntoken.Claims{Audience: "spiffe://example.org/tools/fs", RunID: runA, Txn: "t"})

	cases := []struct {
		name, presenter, token, reason string
	}{
		{"valid token from the server it was issued to", "spiffe://example.org/tools/fs", token, ""},
		{"token replayed by another tool server", "spiffe://example.org/tools/calc", token, "txn_token_invalid"},
		{"forged token", "spiffe://example.org/tools/fs", forged, "txn_token_invalid"},
		{"no token", "spiffe://example.org/tools/fs", "", "txn_token_invalid"},
		{"token presented by a run", runID(runB), token, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := h.upstream.callCount()
			hdr := map[string]string{}
			if tc.token != "" {
				hdr[txntoken.Header] = tc.token
			}
			_, resp := h.post(t, h.ca.httpClient(t, tc.presenter), body, hdr)
			if tc.reason != "" {
				if got := denialReason(t, resp); got != tc.reason {
					t.Errorf("reason = %q, want %q", got, tc.reason)
				}
				if h.upstream.callCount() != before {
					t.Error("a refused chained call was forwarded")
				}
				return
			}
			if _, isErr := resp["error"]; isErr {
				t.Fatalf("call refused: %v", resp)
			}
		})
	}
	last := h.authz.requests[len(h.authz.requests)-1]
	if last.RunID != runB || last.Via != "" {
		t.Errorf("a run's own call used the token's chain: %+v", last)
	}
	var chained *authz.Request
	for i := range h.authz.requests {
		if h.authz.requests[i].Via != "" {
			chained = &h.authz.requests[i]
			break
		}
	}
	if chained == nil || chained.RunID != runA || chained.Via != "spiffe://example.org/tools/fs" {
		t.Errorf("chained request = %+v, want run A via tools/fs", chained)
	}
}

func TestSpansContinueCallerTraceAndHoldNoToken(t *testing.T) {
	h := newHarness(t)
	c := h.client(t, runID(runA), "")
	req := callReq("calc__add", `{"a":1}`)
	req.Params.Meta = &mcp.Meta{AdditionalFields: map[string]any{
		"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
	if _, err := c.CallTool(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	spans := h.spans.Ended()
	if len(spans) == 0 {
		t.Fatal("no span recorded")
	}
	s := spans[len(spans)-1]
	if s.SpanContext().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("trace id = %s, want the caller's", s.SpanContext().TraceID())
	}
	if s.Name() != "tools/call calc__add" {
		t.Errorf("span name = %q", s.Name())
	}
	token := h.upstream.lastCall(t).Header.Get(txntoken.Header)
	for _, a := range s.Attributes() {
		if strings.Contains(a.Value.Emit(), token[:20]) {
			t.Errorf("span attribute %s holds the transaction token", a.Key)
		}
	}
	fwd, _ := meta(t, h.upstream.lastCall(t))["traceparent"].(string)
	if !strings.Contains(fwd, "4bf92f3577b34da6a3ce929d0e0e4736") {
		t.Errorf("forwarded traceparent %q is not in the caller's trace", fwd)
	}
}

func TestIdleSessionsExpire(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the session sweeper (about 2 s)")
	}
	h := newHarness(t, func(o *Options) { o.SessionIdleTTL = 100 * time.Millisecond })
	c := h.client(t, runID(runA), "2025-11-25")
	if h.gw.ActiveSessions() != 1 || c.GetSessionId() == "" {
		t.Fatalf("sessions = %d after initialize", h.gw.ActiveSessions())
	}
	deadline := time.Now().Add(5 * time.Second)
	for h.gw.ActiveSessions() != 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := h.gw.ActiveSessions(); n != 0 {
		t.Fatalf("%d sessions still bound after the idle TTL", n)
	}
	if _, err := c.ListTools(context.Background(), mcp.ListToolsRequest{}); err == nil {
		t.Error("an expired session still answers")
	}
}
