package gateway

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentauth/agentauth/agentauth/audit"
	"github.com/agentauth/agentauth/agentauth/authz"
	"github.com/agentauth/agentauth/agentauth/config"
	"github.com/agentauth/agentauth/agentauth/policy"
	"github.com/agentauth/agentauth/agentauth/runs"
	"github.com/agentauth/agentauth/agentauth/store"
	"github.com/agentauth/agentauth/mcp/txntoken"
	"github.com/agentauth/agentauth/mcp/upstream"
)

// fileServer is a Go tool server whose "read" tool binds its arguments
// with mcp-go's typed handler, that is with encoding/json, which matches
// member names case-insensitively and keeps the last match.
func fileServer(t *testing.T) (url string, reads *[]string) {
	t.Helper()
	var seen []string
	srv := server.NewMCPServer("files", "1")
	srv.AddTool(mcp.NewToolWithRawSchema("read", "read a file",
		json.RawMessage(`{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}`)),
		mcp.NewTypedToolHandler(func(_ context.Context, _ mcp.CallToolRequest, args struct {
			Path string `json:"path"`
		}) (*mcp.CallToolResult, error) {
			seen = append(seen, args.Path)
			b, err := os.ReadFile(args.Path)
			if err != nil {
				return mcp.NewToolResultError(err.Error()), nil
			}
			return mcp.NewToolResultText(string(b)), nil
		}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: server.NewStreamableHTTPServer(srv)}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	return "http://" + ln.Addr().String() + "/mcp", &seen
}

// startRun starts a run whose only grant lets it read files under dir.
func startRun(t *testing.T, dir string) (*authz.Authorizer, string) {
	t.Helper()
	ctx := context.Background()
	p, err := policy.Parse("policy.yaml", fmt.Appendf(nil, `
agents:
  researcher: {grants: [read-allowed]}
grants:
  read-allowed:
    tools: [{server: files, names: [read]}]
    condition: args.path.startsWith(%q)
entitlements:
  - sponsors: {issuer: local, groups: [research]}
    agents: [researcher]
    grants: [read-allowed]
`, dir+"/"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m, err := runs.Open(ctx, runs.Options{TrustDomain: td.String(), Store: st, Policy: p})
	if err != nil {
		t.Fatal(err)
	}
	run, err := m.StartRun(ctx, runs.StartRequest{
		Sponsor: runs.Sponsor{Issuer: "local", Subject: "alice", Groups: []string{"research"}},
		Agent:   "researcher", Grants: []string{"read-allowed"}, Purpose: "case-folding test",
	})
	if err != nil {
		t.Fatal(err)
	}
	return authz.New(m), run.SPIFFEID
}

func connect(t *testing.T, url string, hc *http.Client) *client.Client {
	t.Helper()
	tr, err := transport.NewStreamableHTTP(url, transport.WithHTTPBasicClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	req.Params.ClientInfo = mcp.Implementation{Name: "test", Version: "1"}
	if _, err := c.Initialize(ctx, req); err != nil {
		t.Fatal(err)
	}
	return c
}

func readCall(name, args string) mcp.CallToolRequest {
	var r mcp.CallToolRequest
	r.Params.Name = name
	r.Params.Arguments = json.RawMessage(args)
	return r
}

// TestCaseVariantArgumentsCannotBypassAGrantCondition sends arguments
// whose "path" satisfies the grant's condition and whose "PATH" names a
// secret file. Sent straight to the Go tool server, the call reads the
// secret. Through the gateway, it is rejected as malformed before it is
// authorized or forwarded, and the rejection is in the audit log.
func TestCaseVariantArgumentsCannotBypassAGrantCondition(t *testing.T) {
	dir := t.TempDir()
	allowed := filepath.Join(dir, "allowed")
	secret := filepath.Join(dir, "secret.txt")
	if err := os.Mkdir(allowed, 0o700); err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(allowed, "a.txt"), []byte("public"), 0o600)
	_ = os.WriteFile(secret, []byte("top secret"), 0o600)
	attack := fmt.Sprintf(`{"path":%q,"PATH":%q}`, filepath.Join(allowed, "a.txt"), secret)

	toolURL, reads := fileServer(t)
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "pins.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	set, err := upstream.New(context.Background(), []config.Server{{Name: "files", URL: toolURL}}, upstream.Options{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = set.Close() })
	log, err := audit.Open(filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = log.Close() })
	tokens, _ := txntoken.NewIssuer(GatewayID(td).String(), time.Minute)
	ca := newTestCA(t)
	az, runSPIFFEID := startRun(t, allowed)
	gw, err := New(Options{TrustDomain: td, Authorizer: az, Auditor: AuditLog(log), Upstream: set, Tokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = gw.Serve(ctx, ln, ca.serverTLS(t), time.Second); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	// The tool server on its own reads the file named by the last case variant.
	direct := connect(t, toolURL, http.DefaultClient)
	res, err := direct.CallTool(context.Background(), readCall("read", attack))
	if err != nil || len(*reads) != 1 || (*reads)[0] != secret || !strings.Contains(fmt.Sprint(res.Content), "top secret") {
		t.Fatalf("the tool server did not read the secret directly (%v, %v); the test no longer shows the risk", *reads, err)
	}

	through := connect(t, "https://"+ln.Addr().String()+Path, ca.httpClient(t, runSPIFFEID))
	res, err = through.CallTool(context.Background(), readCall("files__read", fmt.Sprintf(`{"path":%q}`, filepath.Join(allowed, "a.txt"))))
	if err != nil || res.IsError || !strings.Contains(fmt.Sprint(res.Content), "public") {
		t.Fatalf("granted read through the gateway: %v %+v", err, res)
	}
	res, err = through.CallTool(context.Background(), readCall("files__read", attack))
	if err == nil || !strings.Contains(err.Error(), "differ only in case") {
		t.Fatalf("case-variant arguments through the gateway: err %v, result %+v", err, res)
	}
	if len(*reads) != 2 {
		t.Errorf("tool server reads = %v; the case-variant call was forwarded", *reads)
	}
	recs, err := log.Query(context.Background(), audit.Filter{Kind: audit.KindMalformedRequest})
	if err != nil || len(recs) != 1 {
		t.Fatalf("malformed-request records = %d (%v), want 1", len(recs), err)
	}
	if r := recs[0]; r.RunID == "" || r.SponsorSubject != "alice" || r.Method != "tools/call" || len(r.Chain) == 0 {
		t.Errorf("malformed-request record = %+v", r)
	}
}
