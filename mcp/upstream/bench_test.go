package upstream

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentauth/agentauth/agentauth/config"
)

const benchArgs = `{"path":"/srv/data/report.csv","limit":9007199254740993,"opts":{"follow":false}}`

// BenchmarkCallTool measures one tools/call through a Set to the Go test
// server over stdio: pin check, call registration, _meta and the round trip.
func BenchmarkCallTool(b *testing.B) {
	db := openDB(b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := New(ctx, []config.Server{goServerB(b)}, Options{DB: db})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	r := Request{Server: "test", Name: "echo_raw", Arguments: json.RawMessage(benchArgs),
		Meta: json.RawMessage(`{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}`)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.CallTool(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCallToolDirect is the same call with mcp-go's stdio client and
// no Set, as the baseline for BenchmarkCallTool.
func BenchmarkCallToolDirect(b *testing.B) {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	c, err := client.NewStdioMCPClient(exe, []string{testServerEnv + "=1"})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.Initialize(ctx, mcp.InitializeRequest{}); err != nil {
		b.Fatal(err)
	}
	req := mcp.CallToolRequest{}
	req.Params.Name = "echo_raw"
	req.Params.Arguments = json.RawMessage(benchArgs)
	req.Params.RawArguments = json.RawMessage(benchArgs)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.CallTool(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

func goServerB(b *testing.B) config.Server {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	return config.Server{Name: "test", Command: []string{exe}, Env: map[string]string{testServerEnv: "1"}}
}
