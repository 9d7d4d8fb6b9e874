package server_test

import (
	"bufio"
	"context"
	"encoding/json"
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
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/agentauth/agentauth/agentauth"
	"github.com/agentauth/agentauth/agentauth/config"
	"github.com/agentauth/agentauth/agentauth/control/api"
	"github.com/agentauth/agentauth/agentauth/server"
)

const approvalPolicy = `
agents:
  researcher:
    grants: [deploy]
grants:
  deploy:
    tools: [{server: ops, names: [deploy]}]
    approval: {approver: sponsor}
entitlements:
  - sponsors: {issuer: local}
    agents: [researcher]
    grants: [deploy]
`

// startOpsServer serves one MCP tool, deploy, over plain HTTP on 127.0.0.1.
func startOpsServer(t *testing.T) string {
	t.Helper()
	s := mcpserver.NewMCPServer("ops", "1")
	s.AddTool(mcp.NewTool("deploy"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("deployed"), nil
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: mcpserver.NewStreamableHTTPServer(s), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { hs.Close() })
	return "http://" + ln.Addr().String() + "/mcp"
}

// A call waiting for approval when the gateway stops gets its pending
// approval back at once, and the stop is clean.
func TestStopEndsApprovalWaits(t *testing.T) {
	dir := t.TempDir()
	policyPath := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyPath, []byte(approvalPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.Policy = policyPath
	cfg.ApprovalWait = time.Minute
	cfg.Listen = config.Listen{MCP: "127.0.0.1:0", Control: "127.0.0.1:0", Admin: "127.0.0.1:0",
		ControlSocket: filepath.Join(dir, "state", "control.sock")}
	cfg.Servers = []config.Server{{Name: "ops", URL: startOpsServer(t)}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	g, err := server.Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("start gateway: %v", err)
	}
	stopped := false
	defer func() {
		if !stopped {
			g.Stop()
		}
	}()
	sponsor := agentauth.DialSocket(cfg.Listen.ControlSocket)
	run, err := agentauth.StartRun(ctx, sponsor,
		api.StartRunRequest{Agent: "researcher", Grants: []string{"deploy"}, Purpose: "deploy"},
		agentauth.Enrollment{Gateway: "https://" + g.MCPAddr + "/mcp", Control: "https://" + g.ControlAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer run.Close()

	type reply struct {
		body map[string]any
		err  error
	}
	replies := make(chan reply, 1)
	go func() {
		body, err := postCall(ctx, run, `{"jsonrpc":"2.0","id":7,"method":"tools/call",`+
			`"params":{"name":"ops__deploy","arguments":{}}}`)
		replies <- reply{body, err}
	}()
	pending := waitPendingApproval(ctx, t, sponsor)

	stopErr := make(chan error, 1)
	go func() { stopErr <- g.Stop() }()
	var got reply
	select {
	case got = <-replies:
	case <-time.After(server.DrainTimeout / 2):
		t.Fatal("the waiting call got no reply within half the drain timeout")
	}
	if got.err != nil {
		t.Fatalf("call: %v", got.err)
	}
	e, _ := got.body["error"].(map[string]any)
	data, _ := e["data"].(map[string]any)
	if data["reason"] != "approval_required" {
		t.Errorf("reply %v; want a denial with reason approval_required", got.body)
	}
	if data["approval_id"] != pending {
		t.Errorf("approval_id = %v; want %s", data["approval_id"], pending)
	}
	stopped = true
	if err := <-stopErr; err != nil {
		t.Errorf("Stop = %v; want nil", err)
	}
}

// postCall sends one JSON-RPC request to the gateway as the run and
// decodes the reply, whether plain JSON or one server-sent event.
func postCall(ctx context.Context, run *agentauth.Run, body string) (map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", run.Enrollment().Gateway, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := run.HTTPClient().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		sc := bufio.NewScanner(strings.NewReader(string(raw)))
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok && strings.Contains(data, `"id"`) {
				raw = []byte(data)
			}
		}
	}
	var out map[string]any
	return out, json.Unmarshal(raw, &out)
}

// waitPendingApproval returns the id of the first pending approval.
func waitPendingApproval(ctx context.Context, t *testing.T, sponsor *agentauth.Control) string {
	t.Helper()
	for ctx.Err() == nil {
		list, err := sponsor.ListApprovals(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(list) > 0 {
			return list[0].ID
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no approval became pending")
	return ""
}
