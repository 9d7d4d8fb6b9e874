// Package digest is an example MCP tool server that calls another tool
// through the gateway. Its one tool, summarize_file, reads a file by
// calling fs__read_text_file through agentauth with the tool server's own
// SVID and the transaction token of the call it serves, so the gateway
// checks the read against the whole delegation chain of the run that asked
// for the summary. Run it with `agentauth example-server digest` from a
// gateway configured with identity: true for it.
package digest

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentauth/agentauth/agentauth"
)

// ReadTool is the gateway tool the digest server reads files with.
const ReadTool = "fs__read_text_file"

// NewServer returns the MCP server. It joins the gateway as a tool server
// on the first call, so it starts even before its identity is usable.
func NewServer() *server.MCPServer {
	s := server.NewMCPServer("digest", "0.1.0", server.WithToolCapabilities(false))
	d := &digester{}
	s.AddTool(mcp.NewTool("summarize_file",
		mcp.WithDescription("Summarize a text file: its title, line and word counts and first sentence. Reads the file through the agentauth gateway."),
		mcp.WithString("path", mcp.Required(), mcp.Description("absolute path of the file")),
		mcp.WithReadOnlyHintAnnotation(true),
	), d.summarize)
	return s
}

type digester struct {
	mu sync.Mutex
	c  *client.Client
}

// client returns the MCP client to the gateway, connecting on first use.
func (d *digester) client(ctx context.Context) (*client.Client, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.c != nil {
		return d.c, nil
	}
	ts, err := agentauth.JoinAsToolServer()
	if err != nil {
		return nil, err
	}
	c, err := ts.MCPClient(ctx, "digest")
	if err != nil {
		return nil, err
	}
	d.c = c
	return c, nil
}

func (d *digester) summarize(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	path, err := req.RequireString("path")
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	tok, ok := agentauth.TxnTokenFromRequest(req)
	if !ok {
		return mcp.NewToolResultError("no transaction token on this call; call digest through the agentauth gateway"), nil
	}
	ctx = agentauth.WithTxnToken(ctx, tok)
	c, err := d.client(ctx)
	if err != nil {
		return mcp.NewToolResultError("connect to the gateway: " + err.Error()), nil
	}
	read := mcp.CallToolRequest{}
	read.Params.Name = ReadTool
	read.Params.Arguments = map[string]any{"path": path}
	agentauth.SetTxnToken(&read, tok)
	if m := req.Params.Meta; m != nil {
		for _, k := range []string{"traceparent", "tracestate"} {
			if v, ok := m.AdditionalFields[k]; ok {
				read.Params.Meta.AdditionalFields[k] = v
			}
		}
	}
	res, err := c.CallTool(ctx, read)
	if err != nil {
		return mcp.NewToolResultError("the gateway denied the read: " + err.Error()), nil
	}
	if res.IsError {
		return mcp.NewToolResultError("reading failed: " + text(res)), nil
	}
	return mcp.NewToolResultText(Summary(text(res))), nil
}

// Summary describes a text: its first heading, line and word counts and
// first sentence after the heading.
func Summary(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	title, first := "", ""
	for _, l := range lines {
		l = strings.TrimSpace(l)
		switch {
		case l == "":
		case title == "" && strings.HasPrefix(l, "#"):
			title = strings.TrimSpace(strings.TrimLeft(l, "#"))
		case first == "":
			first = l
		}
	}
	return fmt.Sprintf("%q: %d lines, %d words; it opens with %q", title, len(lines), len(strings.Fields(s)), first)
}

func text(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if t, ok := c.(mcp.TextContent); ok {
			b.WriteString(t.Text)
		}
	}
	return b.String()
}
