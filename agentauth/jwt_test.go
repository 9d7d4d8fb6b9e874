package agentauth_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"

	"github.com/agentauth/agentauth/agentauth"
	"github.com/agentauth/agentauth/agentauth/config"
	"github.com/agentauth/agentauth/agentauth/control/api"
	agentserver "github.com/agentauth/agentauth/agentauth/server"
)

// TestJWTSVIDThroughGateway mints a run's JWT-SVID with the SDK and calls
// a tool through the whole gateway with it as a bearer token, over TLS
// without a client certificate.
func TestJWTSVIDThroughGateway(t *testing.T) {
	dir := t.TempDir()
	policyPath := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyPath, []byte(gatewayPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.Policy = policyPath
	cfg.Listen = config.Listen{MCP: "127.0.0.1:0", Control: "127.0.0.1:0", Admin: "127.0.0.1:0",
		ControlSocket: filepath.Join(dir, "state", "control.sock")}
	cfg.Servers = []config.Server{{Name: "hello", URL: startHelloServer(t)}}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	g, err := agentserver.Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("start gateway: %v", err)
	}
	defer func() {
		g.Stop()
		g.Wait()
	}()

	run, err := agentauth.StartRun(ctx, agentauth.DialSocket(cfg.Listen.ControlSocket),
		api.StartRunRequest{Agent: "researcher", Grants: []string{"greet"}, Purpose: "bearer test"},
		agentauth.Enrollment{Gateway: "https://" + g.MCPAddr + "/mcp", Control: "https://" + g.ControlAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer run.Close()
	td := run.SPIFFEID().TrustDomain()
	gatewayID := spiffeid.RequireFromSegments(td, "agentauth", "gateway")

	token, err := run.JWTSVID(ctx, gatewayID.String())
	if err != nil {
		t.Fatalf("JWTSVID: %v", err)
	}
	for _, aud := range []string{"https://example.org", "spiffe://other.org/agentauth/gateway",
		"spiffe://" + td.Name() + "/agents/researcher", "spiffe://" + td.Name() + "/tools/bad_name"} {
		if _, err := run.JWTSVID(ctx, aud); !agentauth.IsCode(err, api.CodeInvalidRequest) {
			t.Errorf("JWTSVID(%q) = %v; want invalid_request", aud, err)
		}
	}
	// A sponsor cannot mint one.
	if _, err := agentauth.DialSocket(cfg.Listen.ControlSocket).JWTSVID(ctx, gatewayID.String()); !agentauth.IsCode(err, api.CodeForbidden) {
		t.Errorf("sponsor mints a JWT-SVID: %v; want forbidden", err)
	}

	// No client certificate: the bearer token is the only credential.
	hc := &http.Client{Transport: &http.Transport{
		TLSClientConfig: tlsconfig.TLSClientConfig(run, tlsconfig.AuthorizeID(gatewayID))}}
	call := func(token string) (*mcp.CallToolResult, error) {
		c, err := client.NewStreamableHttpClient("https://"+g.MCPAddr+"/mcp", transport.WithHTTPBasicClient(hc),
			transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
		if err != nil {
			return nil, err
		}
		defer c.Close()
		if err := c.Start(ctx); err != nil {
			return nil, err
		}
		init := mcp.InitializeRequest{}
		init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
		init.Params.ClientInfo = mcp.Implementation{Name: "bearer", Version: "1"}
		if _, err := c.Initialize(ctx, init); err != nil {
			return nil, err
		}
		tools, err := c.ListTools(ctx, mcp.ListToolsRequest{})
		if err != nil {
			return nil, err
		}
		req := mcp.CallToolRequest{}
		for _, tool := range tools.Tools {
			if strings.Contains(tool.Name, "greet") {
				req.Params.Name = tool.Name
			}
		}
		return c.CallTool(ctx, req)
	}
	res, err := call(token)
	if err != nil {
		t.Fatalf("call with the JWT-SVID: %v", err)
	}
	if res.IsError || len(res.Content) == 0 || res.Content[0].(mcp.TextContent).Text != "hello" {
		t.Errorf("call result %+v", res)
	}
	if _, err := call(token[:len(token)-4] + "AAAA"); err == nil {
		t.Error("a JWT-SVID with a forged signature was accepted")
	}

	// After revocation the run mints no more tokens.
	if _, err := agentauth.DialSocket(cfg.Listen.ControlSocket).Revoke(ctx, run.ID(), "done"); err != nil {
		t.Fatal(err)
	}
	if _, err := run.JWTSVID(ctx, ""); err == nil {
		t.Error("a revoked run minted a JWT-SVID")
	}
}
