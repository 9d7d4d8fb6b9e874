package upstream

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// testServerEnv makes the test binary run as a small MCP stdio server
// instead of the tests, so tests can start it as an upstream process.
const testServerEnv = "AGENTAUTH_UPSTREAM_TEST_SERVER"

func TestMain(m *testing.M) {
	switch os.Getenv(testServerEnv) {
	case "1":
		runTestServer()
		return
	case "raw":
		runRawServer()
		return
	}
	os.Exit(m.Run())
}

// runTestServer serves tools whose description comes from the file in
// DESC_FILE, read at start, so a test can change a definition across a
// restart.
func runTestServer() {
	desc := "echoes its raw arguments"
	if f := os.Getenv("DESC_FILE"); f != "" {
		if b, err := os.ReadFile(f); err == nil {
			desc = strings.TrimSpace(string(b))
		}
	}
	s := server.NewMCPServer("test-server", "1.0", server.WithToolCapabilities(true))
	s.AddTool(mcp.NewTool("echo_raw", mcp.WithDescription(desc)), echoRaw)
	s.AddTool(mcp.NewTool("huge", mcp.WithDescription("returns a long text"),
		mcp.WithNumber("bytes", mcp.Required())), huge)
	s.AddTool(mcp.NewTool("slow", mcp.WithDescription("waits until cancelled, reporting progress")), slow)
	s.AddTool(mcp.NewTool("bad name!", mcp.WithDescription("a name outside the MCP set")), echoRaw)
	s.AddTool(mcp.NewTool(strings.Repeat("x", 126), mcp.WithDescription("too long once namespaced")), echoRaw)
	s.AddTool(mcp.NewTool("add_tool", mcp.WithDescription("adds the tool \"added\"")),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			s.AddTool(mcp.NewTool("added", mcp.WithDescription("added at run time")), echoRaw)
			return mcp.NewToolResultText("ok"), nil
		})
	if err := server.ServeStdio(s); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func echoRaw(_ context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return mcp.NewToolResultText(string(r.Params.RawArguments)), nil
}

func huge(_ context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	return mcp.NewToolResultText(strings.Repeat("a", r.GetInt("bytes", 0))), nil
}

// slow reports progress every 20ms until the call is cancelled, then writes
// "cancelled" to CANCEL_FILE.
func slow(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	srv := server.ServerFromContext(ctx)
	for i := 1; ; i++ {
		if r.Params.Meta != nil && r.Params.Meta.ProgressToken != nil {
			_ = srv.SendNotificationToClient(ctx, "notifications/progress", map[string]any{
				"progressToken": r.Params.Meta.ProgressToken, "progress": i, "message": "working",
			})
		}
		select {
		case <-ctx.Done():
			if f := os.Getenv("CANCEL_FILE"); f != "" {
				_ = os.WriteFile(f, []byte("cancelled"), 0o600)
			}
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// runRawServer speaks JSON-RPC by hand so that it can list one tool twice,
// which no MCP server library allows.
func runRawServer() {
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var req struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		if json.Unmarshal(in.Bytes(), &req) != nil || req.ID == nil {
			continue
		}
		result := ""
		switch req.Method {
		case "initialize":
			result = `{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"raw","version":"1"}}`
		case "tools/list":
			result = `{"tools":[{"name":"dup","inputSchema":{"type":"object"}},` +
				`{"name":"dup","description":"second","inputSchema":{"type":"object"}},` +
				`{"name":"fine","inputSchema":{"type":"object"}}]}`
		}
		if result == "" {
			fmt.Printf(`{"jsonrpc":"2.0","id":%s,"error":{"code":-32601,"message":"method not found"}}`+"\n", req.ID)
			continue
		}
		fmt.Printf(`{"jsonrpc":"2.0","id":%s,"result":%s}`+"\n", req.ID, result)
	}
}
