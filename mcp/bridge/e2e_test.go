package bridge

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"

	"github.com/agentauth/agentauth/mcp/gateway"

	"github.com/agentauth/agentauth/agentauth/audit"
	"github.com/agentauth/agentauth/internal/testenv"
)

func startClient(t *testing.T, tr transport.Interface, version string) *client.Client {
	t.Helper()
	var opts []client.ClientOption
	if version != "" {
		opts = append(opts, client.WithProtocolVersion(version))
	}
	c := client.NewClient(tr, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	must(t, c.Start(ctx))
	t.Cleanup(func() { _ = c.Close() })
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = version
	if version == "" {
		req.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	}
	req.Params.ClientInfo = mcp.Implementation{Name: "e2e", Version: "1"}
	if _, err := c.Initialize(ctx, req); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	return c
}

func call(name, args string) mcp.CallToolRequest {
	var r mcp.CallToolRequest
	r.Params.Name = name
	r.Params.Arguments = json.RawMessage(args)
	return r
}

func text(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// TestThroughBridgeToRealToolServers drives mcp-server-everything and
// mcp-server-filesystem through the bridge's loopback listener and the
// gateway, with mcp-go's client, in both protocol eras.
func TestThroughBridgeToRealToolServers(t *testing.T) {
	s := newStack(t)
	url := s.serveHTTP(t)
	for _, version := range []string{"2025-11-25", ""} {
		name := version
		if name == "" {
			name = "2026-07-28"
		}
		t.Run(name, func(t *testing.T) {
			tr, err := transport.NewStreamableHTTP(url)
			must(t, err)
			c := startClient(t, tr, version)
			exerciseRun(t, c, s, version != "")
		})
	}
	checkAudit(t, s)
}

// checkAudit reads the audit log back: decisions of both effects, each
// naming the run and its sponsor, and an intact hash chain.
func checkAudit(t *testing.T, s *stack) {
	s.gateway.Flush()
	recs, err := s.audit.Query(context.Background(), audit.Filter{})
	must(t, err)
	effects := map[string]int{}
	for _, r := range recs {
		if r.Kind == audit.KindDecision {
			effects[string(r.Effect)+"/"+string(r.Reason)]++
			if r.RunID != s.run.ID || r.SponsorSubject != "alice" {
				t.Errorf("decision record names run %q sponsor %q", r.RunID, r.SponsorSubject)
			}
		}
	}
	for _, want := range []string{"allow/granted", "deny/tool_not_granted", "deny/condition_false"} {
		if effects[want] == 0 {
			t.Errorf("no %s decision in the audit log: %v", want, effects)
		}
	}
	if _, err := s.audit.Verify(context.Background()); err != nil {
		t.Errorf("audit chain does not verify: %v", err)
	}
}

// TestMTLSClientToRealToolServers connects mcp-go's client straight to the
// gateway with the run's SVID over mTLS, without the bridge.
func TestMTLSClientToRealToolServers(t *testing.T) {
	s := newStack(t)
	cfg := tlsconfig.MTLSClientConfig(s.creds, s.creds, tlsconfig.AuthorizeID(gateway.GatewayID(td)))
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	for _, version := range []string{"2025-11-25", ""} {
		tr, err := transport.NewStreamableHTTP(s.url, transport.WithHTTPBasicClient(hc))
		must(t, err)
		exerciseRun(t, startClient(t, tr, version), s, version != "")
	}
}

func exerciseRun(t *testing.T, c *client.Client, s *stack, sessions bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	list, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	must(t, err)
	var names []string
	for _, tool := range list.Tools {
		names = append(names, tool.Name)
	}
	sort.Strings(names)
	want := []string{"everything__echo", "everything__trigger-long-running-operation", "fs__read_text_file"}
	if !slices.Equal(names, want) {
		t.Errorf("tools/list = %v, want %v", names, want)
	}

	res, err := c.CallTool(ctx, call("everything__echo", `{"message":"hello through the gateway"}`))
	if err != nil || !strings.Contains(text(res), "hello through the gateway") {
		t.Errorf("echo = %v, %v", res, err)
	}
	if _, err := c.CallTool(ctx, call("everything__get-sum", `{"a":1,"b":2}`)); err == nil {
		t.Error("a call to a tool without a grant succeeded")
	}

	res, err = c.CallTool(ctx, call("fs__read_text_file", `{"path":"`+filepath.Join(s.granted, "notes.txt")+`"}`))
	if err != nil || !strings.Contains(text(res), "granted notes") {
		t.Errorf("read inside the granted directory = %v, %v", res, err)
	}
	secret := filepath.Join(filepath.Dir(s.granted), "secret.txt")
	if res, err := c.CallTool(ctx, call("fs__read_text_file", `{"path":"`+secret+`"}`)); err == nil {
		t.Errorf("read outside the granted directory succeeded: %s", text(res))
	}

	var read mcp.ReadResourceRequest
	read.Params.URI = "agentauth://everything/demo://resource/static/document/architecture.md"
	if _, err := c.ReadResource(ctx, read); err != nil {
		t.Errorf("granted resource: %v", err)
	}
	read.Params.URI = "agentauth://everything/demo://resource/static/document/features.md"
	if _, err := c.ReadResource(ctx, read); err == nil {
		t.Error("a resource without a grant was read")
	}
	if sessions {
		checkProgress(t, ctx, c)
	}
}

// checkProgress calls a long-running tool with a progress token and
// waits for the relayed progress notifications.
func checkProgress(t *testing.T, ctx context.Context, c *client.Client) {
	var mu sync.Mutex
	var progress []float64
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == "notifications/progress" {
			mu.Lock()
			p, _ := n.Params.AdditionalFields["progress"].(float64)
			progress = append(progress, p)
			mu.Unlock()
		}
	})
	req := call("everything__trigger-long-running-operation", `{"duration":0.3,"steps":3}`)
	req.Params.Meta = &mcp.Meta{ProgressToken: "p-1"}
	if _, err := c.CallTool(ctx, req); err != nil {
		t.Fatalf("long-running operation: %v", err)
	}
	// Notifications are handled off the response path; give the last one
	// a moment to arrive.
	deadline := time.Now().Add(2 * time.Second)
	for {
		mu.Lock()
		n := len(progress)
		mu.Unlock()
		if n >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(progress) < 3 {
		t.Errorf("progress notifications = %v, want 3", progress)
	}
}

// TestStdioBridge runs the bridge's stdio face with mcp-go's stdio client
// on the other end of a pipe.
func TestStdioBridge(t *testing.T) {
	s := newStack(t)
	hostToBridgeR, hostToBridgeW := io.Pipe()
	bridgeToHostR, bridgeToHostW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.bridge.ServeStdio(ctx, hostToBridgeR, bridgeToHostW) }()
	t.Cleanup(func() {
		_ = hostToBridgeW.Close()
		cancel()
		<-done
	})
	c := startClient(t, transport.NewIO(bridgeToHostR, hostToBridgeW, io.NopCloser(strings.NewReader(""))), "2025-11-25")
	cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer ccancel()
	res, err := c.CallTool(cctx, call("everything__echo", `{"message":"over stdio"}`))
	if err != nil || !strings.Contains(text(res), "over stdio") {
		t.Fatalf("echo over stdio = %v, %v", res, err)
	}
	if _, err := c.CallTool(cctx, call("everything__get-sum", `{"a":1,"b":2}`)); err == nil ||
		!strings.Contains(err.Error(), "no grant") {
		t.Errorf("denied call over stdio: err = %v", err)
	}
	checkProgress(t, cctx, c)
}

func TestLoopbackListenerRefusesRebinding(t *testing.T) {
	s := newStack(t)
	url := s.serveHTTP(t)
	cases := []struct {
		name, host, origin string
		want               int
	}{
		{"foreign Host", "evil.example.com", "", http.StatusForbidden},
		{"foreign Origin", "", "http://evil.example.com", http.StatusForbidden},
		{"null Origin", "", "null", http.StatusForbidden},
		{"loopback Origin", "", "http://localhost:3000", http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(
				`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			if tc.host != "" {
				req.Host = tc.host
			}
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			resp, err := http.DefaultClient.Do(req)
			must(t, err)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}

func TestRenewalReplacesSVID(t *testing.T) {
	s := newStack(t)
	before, _ := s.creds.GetX509SVID()
	must(t, s.creds.refresh(context.Background(), true))
	after, _ := s.creds.GetX509SVID()
	if before.Certificates[0].SerialNumber.Cmp(after.Certificates[0].SerialNumber) == 0 {
		t.Error("renewal kept the same certificate")
	}
	if before.PrivateKey == after.PrivateKey {
		t.Error("renewal kept the same key")
	}
	url := s.serveHTTP(t)
	tr, err := transport.NewStreamableHTTP(url)
	must(t, err)
	c := startClient(t, tr, "")
	if _, err := c.ListTools(context.Background(), mcp.ListToolsRequest{}); err != nil {
		t.Errorf("list after renewal: %v", err)
	}
}

// TestNodeClientsThroughBridge runs the official TypeScript SDK client and
// the inspector CLI against the bridge's loopback listener.
func TestNodeClientsThroughBridge(t *testing.T) {
	s := newStack(t)
	url := s.serveHTTP(t)
	env := testenv.NodeEnv(t)
	node := filepath.Join(testenv.NodeModules(), ".bin", "node")

	t.Run("typescript sdk", func(t *testing.T) {
		script, _ := filepath.Abs("testdata/sdk_client.mjs")
		cmd := exec.Command(node, script, url)
		cmd.Dir = filepath.Join(testenv.NodeModules(), "..")
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("sdk client: %v\n%s", err, out)
		}
		for _, want := range []string{"tools: everything__echo,everything__trigger-long-running-operation,fs__read_text_file",
			"echo: hello from node", "denied: -32030 tool_not_granted"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("sdk client output lacks %q:\n%s", want, out)
			}
		}
		// NOTE: the last of the three progress notifications sometimes
		// reaches this client after the result. mcp-go's server queues
		// progress on the session, and the client's standalone GET stream
		// can take it from the queue instead of the call's POST stream;
		// the SDK then drops it. So two or three are accepted here.
		if !strings.Contains(string(out), "progress: 3") && !strings.Contains(string(out), "progress: 2") {
			t.Errorf("sdk client saw fewer than two progress notifications:\n%s", out)
		}
	})
	t.Run("inspector cli", func(t *testing.T) {
		// The inspector resolves ../package.json, so it runs in a
		// temporary subfolder of the npm project.
		dir, err := os.MkdirTemp(filepath.Join(testenv.NodeModules(), ".."), "inspector-")
		must(t, err)
		t.Cleanup(func() { os.RemoveAll(dir) })
		cmd := exec.Command(testenv.NodeBin(t, "mcp-inspector-cli"), "--cli", url, "--transport", "http", "--method", "tools/list")
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "everything__echo") || strings.Contains(string(out), "get-sum") {
			t.Fatalf("inspector tools/list: %v\n%s", err, out)
		}
		cmd = exec.Command(testenv.NodeBin(t, "mcp-inspector-cli"), "--cli", url, "--transport", "http",
			"--method", "tools/call", "--tool-name", "everything__echo", "--tool-arg", "message=inspected")
		cmd.Dir, cmd.Env = dir, env
		out, err = cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "inspected") {
			t.Fatalf("inspector tools/call: %v\n%s", err, out)
		}
	})
}
