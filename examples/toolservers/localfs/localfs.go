// Package localfs is a small MCP tool server that reads, lists and
// writes files under one root folder. It offers the same tool names as the
// npm package @modelcontextprotocol/server-filesystem (read_text_file,
// list_directory, write_file), so the demo's policy works with either, and
// the demo uses it when Node.js is not installed. Run it with
// `agentauth example-server localfs ROOT`.
package localfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// maxFileSize bounds what read_text_file returns, so a large file cannot
// flood the agent.
const maxFileSize = 1 << 20

// NewServer returns the MCP server for the folder root.
func NewServer(root string) *server.MCPServer {
	s := server.NewMCPServer("localfs", "0.1.0", server.WithToolCapabilities(false))
	fs := &folder{root: root}
	s.AddTool(mcp.NewTool("read_text_file",
		mcp.WithDescription("Read a UTF-8 text file under the server's root folder."),
		mcp.WithString("path", mcp.Required(), mcp.Description("absolute path of the file")),
		mcp.WithReadOnlyHintAnnotation(true),
	), fs.readTextFile)
	s.AddTool(mcp.NewTool("list_directory",
		mcp.WithDescription("List the entries of a folder under the server's root folder."),
		mcp.WithString("path", mcp.Required(), mcp.Description("absolute path of the folder")),
		mcp.WithReadOnlyHintAnnotation(true),
	), fs.listDirectory)
	s.AddTool(mcp.NewTool("write_file",
		mcp.WithDescription("Create or overwrite a text file under the server's root folder."),
		mcp.WithString("path", mcp.Required(), mcp.Description("absolute path of the file")),
		mcp.WithString("content", mcp.Required(), mcp.Description("text to write")),
		mcp.WithDestructiveHintAnnotation(true),
	), fs.writeFile)
	return s
}

type folder struct{ root string }

// resolve returns the cleaned absolute path of p, or an error when it lies
// outside the root after symbolic links are followed.
func (f *folder) resolve(p string) (string, error) {
	if !filepath.IsAbs(p) {
		p = filepath.Join(f.root, p)
	}
	clean := filepath.Clean(p)
	real, err := filepath.EvalSymlinks(clean)
	if errors.Is(err, os.ErrNotExist) {
		real, err = filepath.EvalSymlinks(filepath.Dir(clean))
		real = filepath.Join(real, filepath.Base(clean))
	}
	if err != nil {
		return "", err
	}
	rootReal, err := filepath.EvalSymlinks(f.root)
	if err != nil {
		return "", err
	}
	if real != rootReal && !strings.HasPrefix(real, rootReal+string(filepath.Separator)) {
		return "", fmt.Errorf("access denied: %s is outside %s", p, f.root)
	}
	return real, nil
}

func (f *folder) readTextFile(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	p, err := f.argPath(req)
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	info, err := os.Stat(p)
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	if info.Size() > maxFileSize {
		return mcp.NewToolResultError(fmt.Sprintf("%s is %d bytes; the limit is %d", p, info.Size(), maxFileSize)), nil
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	return mcp.NewToolResultText(string(data)), nil
}

func (f *folder) listDirectory(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	p, err := f.argPath(req)
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	entries, err := os.ReadDir(p)
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	lines := make([]string, 0, len(entries))
	for _, e := range entries {
		kind := "[FILE]"
		if e.IsDir() {
			kind = "[DIR]"
		}
		lines = append(lines, kind+" "+e.Name())
	}
	sort.Strings(lines)
	return mcp.NewToolResultText(strings.Join(lines, "\n")), nil
}

func (f *folder) writeFile(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	p, err := f.argPath(req)
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	content, err := req.RequireString("content")
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	return mcp.NewToolResultText("wrote " + p), nil
}

func (f *folder) argPath(req mcp.CallToolRequest) (string, error) {
	p, err := req.RequireString("path")
	if err != nil {
		return "", err
	}
	return f.resolve(p)
}
