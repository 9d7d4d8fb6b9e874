// Command researcher is an example agent built on the agentauth Go SDK.
// It joins the run named in its environment, lists the tools it may call,
// reads a file through the gateway, and delegates the summary to a
// summarizer sub-agent whose enrollment it hands to a child process.
//
// Start it as the agent of a run, with a gateway running the demo's
// policy (or one like it):
//
//	agentauth run start --agent researcher --grant fs-read --grant summarize \
//	  -- go run ./examples/researcher -read /path/under/the/granted/folder.md
//
// Run as `researcher -summarizer FILE` it acts as the sub-agent instead.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentauth/agentauth/agentauth"
	"github.com/agentauth/agentauth/agentauth/control/api"
)

func main() {
	read := flag.String("read", "", "absolute path of a file to read through the gateway")
	summarize := flag.String("summarizer", "", "act as the summarizer sub-agent and read this file")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	run, err := agentauth.Join(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer run.Close()
	fmt.Printf("joined run %s as %s\n", run.ID(), run.SPIFFEID())

	c, err := run.MCPClient(ctx, "researcher")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	tools, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		log.Fatal(err)
	}
	names := make([]string, 0, len(tools.Tools))
	for _, t := range tools.Tools {
		names = append(names, t.Name)
	}
	fmt.Println("tools:", strings.Join(names, ", "))

	path := *read
	if *summarize != "" {
		path = *summarize
	}
	if path == "" {
		return
	}
	req := mcp.CallToolRequest{}
	req.Params.Name = "fs__read_text_file"
	req.Params.Arguments = map[string]any{"path": path}
	res, err := c.CallTool(ctx, req)
	if err != nil {
		fmt.Println("read denied:", err)
	} else {
		fmt.Printf("read %s: %d bytes\n", path, len(text(res)))
	}
	if *summarize != "" {
		return
	}
	if err := delegate(ctx, run, path); err != nil {
		log.Fatal(err)
	}
}

// delegate starts a summarizer run under this one and runs this program
// again as that sub-agent, with the child's enrollment in its environment.
func delegate(ctx context.Context, run *agentauth.Run, path string) error {
	child, err := run.Delegate(ctx, api.DelegateRequest{
		Agent: "summarizer", Grants: []string{"fs-read-notes"},
		Purpose: "summarize " + path, TTL: "5m",
	})
	if err != nil {
		return fmt.Errorf("delegate to the summarizer: %w", err)
	}
	fmt.Printf("delegated to run %s (%s)\n", child.Run.ID, child.Run.SPIFFEID)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, self, "-summarizer", path)
	cmd.Env = append(os.Environ(), child.Enrollment.Environ()...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
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
