package gateway

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agentauth/agentauth/mcp/txntoken"
)

// FuzzServePost feeds arbitrary bodies and Mcp-Method/Mcp-Name headers to
// the gateway as an authenticated run. Whatever the input, a call reaches
// the tool server only with the exact argument bytes the authorizer
// allowed.
func FuzzServePost(f *testing.F) {
	for _, seed := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calc__add","arguments":{"a":1}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calc__add","Name":"fs__write","arguments":{}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fs__read","arguments":{"path":"/granted/x","path":"/etc"}}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]`,
		`{"jsonrpc":"2.0","id":"x","method":"resources/read","params":{"uri":"agentauth://fs/file:///granted/a.txt"}}`,
	} {
		f.Add([]byte(seed), "", "")
	}
	ca := newTestCA(f)
	tokens, err := txntoken.NewIssuer(GatewayID(td).String(), time.Minute)
	if err != nil {
		f.Fatal(err)
	}
	up := newFakeUpstream()
	az := &fakeAuthorizer{approved: map[string]bool{}}
	auditor := &memAuditor{}
	gw, err := New(Options{TrustDomain: td, Authorizer: az, Auditor: auditor, Upstream: up,
		Tokens: tokens, MaxBodyBytes: 16 << 10})
	if err != nil {
		f.Fatal(err)
	}
	cert := ca.mint(f, runID(runA))
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	state := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}

	f.Fuzz(func(t *testing.T, body []byte, method, name string) {
		before := up.callCount()
		req := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body))
		req.TLS = state
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if method != "" {
			req.Header.Set("Mcp-Method", method)
		}
		if name != "" {
			req.Header.Set("Mcp-Name", name)
		}
		recordsBefore := countMalformed(auditor.records())
		reply := httptest.NewRecorder()
		gw.ServeHTTP(reply, req)
		refused := reply.Code != http.StatusOK && strings.Contains(reply.Body.String(), `"reason":"malformed_request"`)
		if n := countMalformed(auditor.records()) - recordsBefore; (n == 1) != refused || n > 1 {
			t.Fatalf("HTTP %d %s left %d malformed-request records", reply.Code, reply.Body, n)
		}
		if up.callCount() == before {
			return
		}
		up.mu.Lock()
		got := up.calls[len(up.calls)-1]
		up.mu.Unlock()
		az.mu.Lock()
		last := az.requests[len(az.requests)-1]
		az.mu.Unlock()
		if !bytes.Equal(got.Arguments, last.Arguments) || got.Server != last.Target.Server || got.Name != last.Target.Name {
			t.Fatalf("forwarded %s/%s %s, authorized %s/%s %s",
				got.Server, got.Name, got.Arguments, last.Target.Server, last.Target.Name, last.Arguments)
		}
		if d := az.Authorize(t.Context(), last); !d.Allowed() && d.Reason != "approved" {
			t.Fatalf("forwarded a call the authorizer refuses: %+v", d)
		}
	})
}

func countMalformed(recs []Record) int {
	n := 0
	for _, r := range recs {
		if r.Malformed {
			n++
		}
	}
	return n
}
