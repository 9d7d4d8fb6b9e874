package agentauth_test

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agentauth/agentauth/agentauth"
)

type peerKey struct{}

// startMTLSToolServer serves one MCP tool, "whoami", over Streamable HTTP
// with mTLS that requires an SVID of the trust domain, presenting the
// gateway's SVID. The tool replies with the caller's SPIFFE ID and the
// transaction token it received.
func startMTLSToolServer(t *testing.T, g *gateway) string {
	t.Helper()
	s := server.NewMCPServer("tools", "1")
	s.AddTool(mcp.NewTool("whoami"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		peer, _ := ctx.Value(peerKey{}).(string)
		tok, _ := agentauth.TxnTokenFromRequest(req)
		return mcp.NewToolResultText(peer + " " + tok), nil
	})
	h := server.NewStreamableHTTPServer(s, server.WithHTTPContextFunc(func(ctx context.Context, r *http.Request) context.Context {
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			if id, err := x509svid.IDFromCert(r.TLS.PeerCertificates[0]); err == nil {
				ctx = context.WithValue(ctx, peerKey{}, id.String())
			}
		}
		return ctx
	}))
	td := spiffeid.RequireTrustDomainFromString("agentauth.local")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h, TLSConfig: tlsconfig.MTLSServerConfig(g.ca, g.ca, tlsconfig.AuthorizeMemberOf(td)),
		ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { hs.Close() })
	return "https://" + ln.Addr().String() + "/mcp"
}

func TestMCPClientUsesRunSVID(t *testing.T) {
	g := startGateway(t, 10*time.Minute)
	e := g.enroll(t)
	e.Gateway = startMTLSToolServer(t, g)
	run, err := agentauth.JoinEnrollment(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	defer run.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := run.MCPClient(ctx, "sdk-test")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	req := mcp.CallToolRequest{}
	req.Params.Name = "whoami"
	res, err := c.CallTool(agentauth.WithTxnToken(ctx, "txn-abc"), req)
	if err != nil {
		t.Fatal(err)
	}
	got := res.Content[0].(mcp.TextContent).Text
	if want := e.SPIFFEID + " txn-abc"; got != want {
		t.Errorf("tool saw %q, want %q", got, want)
	}

	res, err = c.CallTool(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.Content[0].(mcp.TextContent).Text, e.SPIFFEID+" "; got != want {
		t.Errorf("without a token the tool saw %q, want %q", got, want)
	}
}

func TestTxnTokenFromMeta(t *testing.T) {
	var req mcp.CallToolRequest
	if _, ok := agentauth.TxnTokenFromRequest(req); ok {
		t.Error("token found in an empty request")
	}
	agentauth.SetTxnToken(&req, "from-meta")
	req.Header = http.Header{"Txn-Token": {"from-header"}}
	if tok, _ := agentauth.TxnTokenFromRequest(req); tok != "from-meta" {
		t.Errorf("token %q, want the _meta one", tok)
	}
	req.Params.Meta = nil
	if tok, _ := agentauth.TxnTokenFromRequest(req); tok != "from-header" {
		t.Errorf("token %q, want the header one", tok)
	}
}

func newCallWithToken(tok string) mcp.CallToolRequest {
	var req mcp.CallToolRequest
	agentauth.SetTxnToken(&req, tok)
	return req
}
