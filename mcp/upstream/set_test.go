package upstream

import (
	"context"
	"database/sql"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	_ "modernc.org/sqlite"

	"github.com/agentauth/agentauth/agentauth/config"
	"github.com/agentauth/agentauth/internal/testenv"
)

func openDB(t testing.TB) *sql.DB {
	t.Helper()
	return reopenDB(t, filepath.Join(t.TempDir(), "agentauth.db"))
}

// reopenDB opens a handle on the SQLite file at path, with WAL and a busy
// timeout as the gateway and the CLI open it.
func reopenDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// nodeServer configures an npm MCP server over stdio, run by Node 22.
func nodeServer(t *testing.T, name, bin string, args ...string) config.Server {
	t.Helper()
	path := testenv.NodeBin(t, bin)
	env := map[string]string{}
	for _, kv := range testenv.NodeEnv(t) {
		if k, v, ok := strings.Cut(kv, "="); ok && k == "PATH" {
			env["PATH"] = v
		}
	}
	return config.Server{Name: name, Command: append([]string{path}, args...), Env: env}
}

// goServer configures the test binary as a stdio MCP server.
func goServer(t *testing.T, name string, env map[string]string) config.Server {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	e := map[string]string{testServerEnv: "1"}
	for k, v := range env {
		e[k] = v
	}
	return config.Server{Name: name, Command: []string{exe}, Env: e}
}

func newSet(t *testing.T, servers []config.Server, opts Options) *Set {
	t.Helper()
	if opts.DB == nil {
		opts.DB = openDB(t)
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := New(ctx, servers, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func resultText(t *testing.T, res *mcp.CallToolResult) string {
	t.Helper()
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// waitFor polls cond every 50ms until it holds or 30s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func toolNames(s *Set) map[string]PinStatus {
	names := map[string]PinStatus{}
	for _, t := range s.Catalog().Tools {
		names[t.Definition.Name] = t.Status
	}
	return names
}

func TestSetNodeServers(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hello from disk\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir, _ = filepath.EvalSymlinks(dir)
	s := newSet(t, []config.Server{
		nodeServer(t, "everything", "mcp-server-everything"),
		nodeServer(t, "files", "mcp-server-filesystem", dir),
	}, Options{})
	if err := s.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}

	names := toolNames(s)
	for _, want := range []string{"everything__echo", "everything__get-sum", "files__read_text_file", "files__list_directory"} {
		if names[want] != StatusAccepted {
			t.Errorf("tool %s: status %q, want accepted (catalog: %v)", want, names[want], names)
		}
	}
	if tool, ok := s.Tool("files__read_text_file"); !ok || tool.Server != "files" || tool.Upstream != "read_text_file" {
		t.Errorf("Tool(files__read_text_file) = %+v, %v", tool, ok)
	}

	ctx := callCtx(t)
	res, err := s.CallTool(ctx, Request{Server: "everything", Name: "echo", Arguments: json.RawMessage(`{"message":"héllo <&>"}`)})
	if err != nil {
		t.Fatalf("echo: %v", err)
	}
	if got := resultText(t, res); got != "Echo: héllo <&>" {
		t.Errorf("echo = %q", got)
	}

	res, err = s.CallTool(ctx, Request{Server: "everything", Name: "get-sum", Arguments: json.RawMessage(`{"a":2,"b":40}`)})
	if err != nil {
		t.Fatalf("get-sum: %v", err)
	}
	if got := resultText(t, res); !strings.Contains(got, "42") {
		t.Errorf("get-sum = %q, want 42 in it", got)
	}

	path, _ := json.Marshal(filepath.Join(dir, "hello.txt"))
	res, err = s.CallTool(ctx, Request{Server: "files", Name: "read_text_file", Arguments: json.RawMessage(`{"path":` + string(path) + `}`)})
	if err != nil {
		t.Fatalf("read_text_file: %v", err)
	}
	if got := resultText(t, res); got != "hello from disk\n" {
		t.Errorf("read_text_file = %q", got)
	}
}

func contextWithCancel(t *testing.T) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx, cancel
}
