package gateway

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentauth/agentauth/agentauth/authz"
	"github.com/agentauth/agentauth/agentauth/config"
	"github.com/agentauth/agentauth/agentauth/policy"
	"github.com/agentauth/agentauth/agentauth/runs"
	"github.com/agentauth/agentauth/agentauth/store"
	"github.com/agentauth/agentauth/mcp/upstream"
)

// listPolicy grants "reader" the resources under file:///public/ and the
// prompt greet, and "caller" one tool and nothing else.
const listPolicy = `
agents:
  researcher: {grants: [reader, caller]}
grants:
  reader:
    resources: [{server: docs, uri_prefixes: ["file:///public/"]}]
    prompts: [{server: docs, names: [greet]}]
  caller:
    tools: [{server: docs, names: [echo]}]
entitlements:
  - sponsors: {issuer: local, groups: [research]}
    agents: [researcher]
    grants: [reader, caller]
`

// secretWords appear only in the URIs, names and descriptions of the
// entries no grant covers.
var secretWords = []string{"confidential", "payroll", "salaries", "admin_notes"}

// docsServer serves public and confidential resources, templates and prompts
// over Streamable HTTP.
func docsServer(t *testing.T) string {
	t.Helper()
	s := server.NewMCPServer("docs", "1", server.WithResourceCapabilities(true, true),
		server.WithPromptCapabilities(true), server.WithToolCapabilities(true))
	read := func(_ context.Context, r mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: r.Params.URI, Text: "text of " + r.Params.URI}}, nil
	}
	s.AddResource(mcp.NewResource("file:///public/a.txt", "a"), read)
	s.AddResource(mcp.NewResource("file:///public/b.txt", "b"), read)
	s.AddResource(mcp.NewResource("file:///confidential/payroll.csv", "salaries"), read)
	s.AddResourceTemplate(mcp.NewResourceTemplate("file:///public/{name}", "public file"), read)
	s.AddResourceTemplate(mcp.NewResourceTemplate("file:///confidential/{name}", "confidential file"), read)
	prompt := func(context.Context, mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return mcp.NewGetPromptResult("p", nil), nil
	}
	s.AddPrompt(mcp.NewPrompt("greet"), prompt)
	s.AddPrompt(mcp.NewPrompt("admin_notes"), prompt)
	s.AddTool(mcp.NewToolWithRawSchema("echo", "echo", json.RawMessage(`{"type":"object"}`)),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText("ok"), nil
		})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: server.NewStreamableHTTPServer(s)}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	return "http://" + ln.Addr().String() + "/mcp"
}

// listStack fronts docsServer with the gateway, the real upstream Set and
// the real authorizer, and returns the harness and the SPIFFE IDs of a run
// holding both grants and of a run holding only the tool grant.
func listStack(t *testing.T, unprefixed string) (h *harness, reader, caller string) {
	t.Helper()
	ctx := context.Background()
	p, err := policy.Parse("policy.yaml", []byte(listPolicy))
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
	start := func(grants ...string) string {
		run, err := m.StartRun(ctx, runs.StartRequest{
			Sponsor: runs.Sponsor{Issuer: "local", Subject: "alice", Groups: []string{"research"}},
			Agent:   "researcher", Grants: grants, Purpose: "listing",
		})
		if err != nil {
			t.Fatal(err)
		}
		return run.SPIFFEID
	}
	reader, caller = start("reader", "caller"), start("caller")

	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "pins.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	set, err := upstream.New(ctx, []config.Server{{Name: "docs", URL: docsServer(t)}}, upstream.Options{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = set.Close() })
	if err := set.Ready(); err != nil {
		t.Fatal(err)
	}
	h = newHarness(t, func(o *Options) {
		o.Upstream, o.Authorizer, o.Unprefixed = set, authz.New(m), unprefixed
	})
	return h, reader, caller
}

// TestListsShowOnlyGrantedEntries checks that resources/list,
// resources/templates/list and prompts/list show a run only what its grants
// cover, in both protocol eras and with or without namespacing, and that
// no response names an entry it may not read.
func TestListsShowOnlyGrantedEntries(t *testing.T) {
	for _, unprefixed := range []string{"", "docs"} {
		h, reader, caller := listStack(t, unprefixed)
		uri := func(u string) string {
			if unprefixed != "" {
				return u
			}
			return upstream.JoinURI("docs", u)
		}
		name := func(n string) string {
			if unprefixed != "" {
				return n
			}
			return upstream.JoinName("docs", n)
		}
		for _, version := range []string{"2025-11-25", ""} {
			t.Run("unprefixed="+unprefixed+"/version="+version, func(t *testing.T) {
				ctx := context.Background()
				var seen recorder
				c := h.client(t, reader, version, transport.WithHTTPBasicClient(seen.client(h.ca.httpClient(t, reader))))
				res, err := c.ListResources(ctx, mcp.ListResourcesRequest{})
				if err != nil {
					t.Fatal(err)
				}
				var uris []string
				for _, r := range res.Resources {
					uris = append(uris, r.URI)
				}
				slices.Sort(uris)
				if want := []string{uri("file:///public/a.txt"), uri("file:///public/b.txt")}; !slices.Equal(uris, want) {
					t.Errorf("resources/list = %v, want %v", uris, want)
				}
				tmpls, err := c.ListResourceTemplates(ctx, mcp.ListResourceTemplatesRequest{})
				if err != nil {
					t.Fatal(err)
				}
				if len(tmpls.ResourceTemplates) != 1 || tmpls.ResourceTemplates[0].URITemplate.Raw() != uri("file:///public/{name}") {
					t.Errorf("resources/templates/list = %+v, want only the public template", tmpls.ResourceTemplates)
				}
				prompts, err := c.ListPrompts(ctx, mcp.ListPromptsRequest{})
				if err != nil {
					t.Fatal(err)
				}
				if len(prompts.Prompts) != 1 || prompts.Prompts[0].Name != name("greet") {
					t.Errorf("prompts/list = %+v, want only greet", prompts.Prompts)
				}

				if strings.Contains(seen.String(), `"cacheScope":"public"`) {
					t.Errorf("a list filtered for one run is marked cacheable for all:\n%s", seen.String())
				}
				for _, w := range secretWords {
					if strings.Contains(seen.String(), w) {
						t.Errorf("the gateway's answers to the run name %q:\n%s", w, seen.String())
					}
				}

				cc := h.client(t, caller, version)
				res, err = cc.ListResources(ctx, mcp.ListResourcesRequest{})
				if err != nil {
					t.Fatal(err)
				}
				tmpls, err = cc.ListResourceTemplates(ctx, mcp.ListResourceTemplatesRequest{})
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Resources) != 0 || len(tmpls.ResourceTemplates) != 0 {
					t.Errorf("a run with no resource grant sees %v and %v", res.Resources, tmpls.ResourceTemplates)
				}
			})
		}

		t.Run("unprefixed="+unprefixed+"/read hidden", func(t *testing.T) {
			_, body := h.post(t, h.ca.httpClient(t, reader), `{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"`+
				uri("file:///confidential/payroll.csv")+`"}}`, nil)
			if got := denialReason(t, body); got != string(authz.ReasonToolNotGranted) {
				t.Errorf("reading a hidden resource: reason %q", got)
			}
		})
	}
}

// recorder keeps every response body an HTTP client reads.
type recorder struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (r *recorder) client(hc *http.Client) *http.Client {
	next := hc.Transport
	return &http.Client{Transport: roundTripFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		if err == nil {
			resp.Body = struct {
				io.Reader
				io.Closer
			}{io.TeeReader(resp.Body, r), resp.Body}
		}
		return resp, err
	})}
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Write(p)
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
