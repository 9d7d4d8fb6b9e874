package agentauth_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentauth/agentauth/agentauth"
	"github.com/agentauth/agentauth/agentauth/config"
	"github.com/agentauth/agentauth/agentauth/control/api"
	agentserver "github.com/agentauth/agentauth/agentauth/server"
)

const gatewayPolicy = `
agents:
  researcher:
    grants: [greet]
grants:
  greet:
    tools: [{server: hello, names: [greet]}]
entitlements:
  - sponsors: {issuer: local}
    agents: [researcher]
    grants: [greet]
`

// startHelloServer serves an MCP tool server over plain HTTP on 127.0.0.1
// with two tools: greet, which the policy grants, and secret, which it
// does not.
func startHelloServer(t *testing.T) string {
	t.Helper()
	s := server.NewMCPServer("hello", "1")
	s.AddTool(mcp.NewTool("greet"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("hello"), nil
	})
	s.AddTool(mcp.NewTool("secret"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("the secret"), nil
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: server.NewStreamableHTTPServer(s), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { hs.Close() })
	return "http://" + ln.Addr().String() + "/mcp"
}

// TestSDKThroughGateway runs the whole gateway (agentauth serve's
// components) and uses the SDK as an agent would: start a run as the
// local user, join it, and call tools over mTLS through the gateway.
func TestSDKThroughGateway(t *testing.T) {
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
		api.StartRunRequest{Agent: "researcher", Grants: []string{"greet"}, Purpose: "say hello"},
		agentauth.Enrollment{Gateway: "https://" + g.MCPAddr + "/mcp", Control: "https://" + g.ControlAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer run.Close()
	c, err := run.MCPClient(ctx, "sdk-e2e")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	tools, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
	}
	if len(names) != 1 || !strings.Contains(names[0], "greet") {
		t.Fatalf("tools/list shows %v; want only the granted greet tool", names)
	}
	req := mcp.CallToolRequest{}
	req.Params.Name = names[0]
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("call %s: %v", names[0], err)
	}
	if res.IsError || len(res.Content) == 0 || res.Content[0].(mcp.TextContent).Text != "hello" {
		t.Errorf("call result %+v", res)
	}

	req.Params.Name = strings.Replace(names[0], "greet", "secret", 1)
	res, err = c.CallTool(ctx, req)
	if err == nil && !res.IsError {
		t.Errorf("ungranted tool %s was called: %+v", req.Params.Name, res)
	}
}
