package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentauth/agentauth/agentauth/config"
)

// seenRequest is one tools/call as a tool server received it.
type seenRequest struct {
	header http.Header
	body   map[string]json.RawMessage
	params map[string]json.RawMessage
	meta   map[string]json.RawMessage
}

// recorder keeps every tools/call body that reaches the wrapped handler.
type recorder struct {
	next http.Handler
	mu   sync.Mutex
	seen []seenRequest
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var s seenRequest
		s.header = r.Header.Clone()
		if json.Unmarshal(body, &s.body) == nil && string(s.body["method"]) == `"tools/call"` {
			_ = json.Unmarshal(s.body["params"], &s.params)
			_ = json.Unmarshal(s.params["_meta"], &s.meta)
			rec.mu.Lock()
			rec.seen = append(rec.seen, s)
			rec.mu.Unlock()
		}
	}
	rec.next.ServeHTTP(w, r)
}

func (rec *recorder) last(t *testing.T) seenRequest {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.seen) == 0 {
		t.Fatal("the tool server received no tools/call")
	}
	return rec.seen[len(rec.seen)-1]
}

// startRecordedServer serves Go tools over plain Streamable HTTP on
// 127.0.0.1 and records the tools/call requests they receive.
func startRecordedServer(t *testing.T) (string, *recorder) {
	t.Helper()
	s := server.NewMCPServer("raw-test", "1.0", server.WithToolCapabilities(true))
	s.AddTool(mcp.NewTool("echo_raw", mcp.WithDescription("echoes its raw arguments")), echoRaw)
	s.AddTool(mcp.NewTool("fails", mcp.WithDescription("returns a tool error")),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultError("no such file"), nil
		})
	s.AddTool(mcp.NewTool("boom", mcp.WithDescription("fails the request")),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return nil, errors.New("disk on fire")
		})
	s.AddTool(mcp.NewToolWithRawSchema("regional", "names its region in a header",
		json.RawMessage(`{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"}}}`)),
		echoRaw)
	rec := &recorder{next: server.NewStreamableHTTPServer(s)}
	ts := httptest.NewServer(rec)
	t.Cleanup(ts.Close)
	return ts.URL + "/mcp", rec
}

func TestCallToolRawModern(t *testing.T) {
	url, rec := startRecordedServer(t)
	s := newSet(t, []config.Server{{Name: "web", URL: url}}, Options{})
	if !s.RawCapable("web") {
		t.Fatal("RawCapable(web) = false for a live Streamable HTTP server")
	}
	args := `{"n":9007199254740993,"neg":-12345678901234567890,"s":"a\u0000b"}`
	res, err := s.CallToolRaw(callCtx(t), Request{Server: "web", Name: "echo_raw",
		Arguments: json.RawMessage(args), Meta: json.RawMessage(`{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01","x":1}`),
		Header: http.Header{"Txn-Token": {"signed-token"}}})
	if err != nil {
		t.Fatalf("CallToolRaw: %v", err)
	}
	var result mcp.CallToolResult
	if err := json.Unmarshal(res.Result, &result); err != nil || res.IsError {
		t.Fatalf("result %s (isError %v): %v", res.Result, res.IsError, err)
	}
	if got := resultText(t, &result); got != args {
		t.Errorf("server received %s\nwant           %s", got, args)
	}

	seen := rec.last(t)
	if got := string(seen.params["arguments"]); got != args {
		t.Errorf("arguments on the wire %s, want the exact bytes %s", got, args)
	}
	if id := string(seen.body["id"]); !strings.HasPrefix(id, `"`+rawIDPrefix) {
		t.Errorf("request id %s does not carry the raw prefix", id)
	}
	want := map[string]string{
		mcp.MetaKeyProtocolVersion: `"` + mcp.ProtocolVersion20260728 + `"`,
		"x":                        `1`,
		"traceparent":              `"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"`,
	}
	for k, v := range want {
		if got := string(seen.meta[k]); got != v {
			t.Errorf("_meta[%q] = %s, want %s", k, got, v)
		}
	}
	if _, ok := seen.meta[mcp.MetaKeyClientCapabilities]; !ok {
		t.Errorf("_meta lacks %s, which protocol version 2026-07-28 requires", mcp.MetaKeyClientCapabilities)
	}
	for k, v := range map[string]string{"Txn-Token": "signed-token", mcp.HeaderMethod: "tools/call", mcp.HeaderName: "echo_raw"} {
		if got := seen.header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
}

func TestCallToolRawSessionProtocol(t *testing.T) {
	url, rec := startRecordedServer(t)
	// With a sampling relay the Set speaks the newest revision with sessions.
	s := newSet(t, []config.Server{{Name: "web", URL: url}}, Options{
		Sampling: func(context.Context, string, mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return nil, errors.New("not in this test")
		},
	})
	res, err := s.CallToolRaw(callCtx(t), Request{Server: "web", Name: "echo_raw",
		Arguments: json.RawMessage(`{"a":1}`), Meta: json.RawMessage(`{ }`)})
	if err != nil || res.IsError {
		t.Fatalf("CallToolRaw: %v (isError %v)", err, res.IsError)
	}
	seen := rec.last(t)
	if seen.header.Get("Mcp-Session-Id") == "" {
		t.Error("a call on a session-based revision carries no Mcp-Session-Id")
	}
	if got := seen.header.Get(mcp.HeaderProtocolVersion); got != SessionProtocol {
		t.Errorf("MCP-Protocol-Version = %q, want %q", got, SessionProtocol)
	}
	if _, ok := seen.meta[mcp.MetaKeyProtocolVersion]; ok {
		t.Errorf("_meta of a session-based call carries %s: %v", mcp.MetaKeyProtocolVersion, seen.meta)
	}
}

func TestCallToolRawErrors(t *testing.T) {
	url, _ := startRecordedServer(t)
	s := newSet(t, []config.Server{{Name: "web", URL: url}}, Options{})

	res, err := s.CallToolRaw(callCtx(t), Request{Server: "web", Name: "fails", Arguments: json.RawMessage(`{}`)})
	if err != nil || !res.IsError {
		t.Errorf("tool error: err %v, isError %v; want the result with isError set", err, res.IsError)
	}
	_, err = s.CallToolRaw(callCtx(t), Request{Server: "web", Name: "boom", Arguments: json.RawMessage(`{}`)})
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("server error: err = %v, want the server's message", err)
	}
	_, err = s.CallToolRaw(callCtx(t), Request{Server: "web", Name: "missing"})
	if !errors.Is(err, ErrUnknown) {
		t.Errorf("unknown tool: err = %v, want ErrUnknown", err)
	}
	_, err = s.CallToolRaw(callCtx(t), Request{Server: "web", Name: "echo_raw", Arguments: json.RawMessage(`[1]`)})
	if err == nil || !strings.Contains(err.Error(), "JSON object") {
		t.Errorf("array arguments: err = %v, want a rejection", err)
	}
}

func TestCallToolRawParamHeaders(t *testing.T) {
	url, rec := startRecordedServer(t)
	s := newSet(t, []config.Server{{Name: "web", URL: url}}, Options{})
	tool, _ := s.Tool("web__regional")
	if !tool.ParamHeaders() {
		t.Fatal("a tool with x-mcp-header is not marked as mirroring arguments")
	}
	res, err := s.CallToolRaw(callCtx(t), Request{Server: "web", Name: "regional", Arguments: json.RawMessage(`{"region":"eu-west"}`)})
	if err != nil || res.IsError {
		t.Fatalf("CallToolRaw: %v (result %s)", err, res.Result)
	}
	if got := rec.last(t).header.Get("Mcp-Param-Region"); got != "eu-west" {
		t.Errorf("Mcp-Param-Region = %q, want eu-west", got)
	}
}

func TestCallToolRawStdio(t *testing.T) {
	cancelFile := filepath.Join(t.TempDir(), "cancelled")
	s := newSet(t, []config.Server{goServer(t, "local", map[string]string{"CANCEL_FILE": cancelFile})}, Options{})
	if !s.RawCapable("local") {
		t.Fatal("RawCapable(local) = false for a running stdio server")
	}
	args := `{"n":9007199254740993,"s":"a\u0000b"}`
	res, err := s.CallToolRaw(callCtx(t), Request{Server: "local", Name: "echo_raw", Arguments: json.RawMessage(args)})
	if err != nil || res.IsError {
		t.Fatalf("CallToolRaw: %v (result %s)", err, res.Result)
	}
	var result mcp.CallToolResult
	if err := json.Unmarshal(res.Result, &result); err != nil {
		t.Fatal(err)
	}
	if got := resultText(t, &result); got != args {
		t.Errorf("server received %s\nwant           %s", got, args)
	}

	// A caller that goes away cancels the call on the server.
	ctx, cancel := contextWithCancel(t)
	done := make(chan error, 1)
	go func() {
		_, err := s.CallToolRaw(ctx, Request{Server: "local", Name: "slow", Arguments: json.RawMessage(`{}`)})
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	cancel()
	if err := <-done; err == nil {
		t.Fatal("cancelled call returned no error")
	}
	waitFor(t, "the server to see the cancellation", func() bool {
		_, err := os.Stat(cancelFile)
		return err == nil
	})

	if _, err := s.CallToolRaw(callCtx(t), Request{Server: "local", Name: "echo_raw",
		Progress: func(mcp.ProgressNotificationParams) {}}); !errors.Is(err, ErrNotRaw) {
		t.Errorf("call with a progress callback: err = %v, want ErrNotRaw", err)
	}
	if s.RawCapable("nobody") {
		t.Error("RawCapable(nobody) = true for a server that is not configured")
	}
}

func TestRawResult(t *testing.T) {
	for _, tc := range []struct {
		in      string
		isError bool
		err     string
	}{
		{in: `{"content":[]}`},
		{in: `{"content":[],"isError":true}`, isError: true},
		{in: `{"isError":false}`},
		{in: ``, err: "not a JSON object"},
		{in: `[]`, err: "not a JSON object"},
		{in: `"text"`, err: "not a JSON object"},
		{in: `{"isError":"yes"}`, err: "tools/call result"},
		{in: `{"resultType":"input_required","inputRequests":{}}`, err: "client input"},
	} {
		got, err := rawResult(json.RawMessage(tc.in))
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("rawResult(%s): err = %v, want one containing %q", tc.in, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("rawResult(%s): %v", tc.in, err)
		case tc.err == "" && got.IsError != tc.isError:
			t.Errorf("rawResult(%s).IsError = %v, want %v", tc.in, got.IsError, tc.isError)
		}
	}
}

func TestMergeMeta(t *testing.T) {
	for _, tc := range []struct{ protocol, meta, want, err string }{
		{protocol: `{"p":1}`, meta: ``, want: `{"p":1}`},
		{protocol: `{"p":1}`, meta: ` { } `, want: `{"p":1}`},
		{protocol: `{"p":1}`, meta: `{"a":2}`, want: `{"p":1,"a":2}`},
		{protocol: ``, meta: `{"a":2}`, want: `{"a":2}`},
		{protocol: `{"p":1}`, meta: `[1]`, err: "JSON object"},
		{protocol: `{"p":1}`, meta: `{"a":`, err: "JSON object"},
	} {
		got, err := mergeMeta([]byte(tc.protocol), []byte(tc.meta))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("mergeMeta(%s, %s): err = %v, want %q", tc.protocol, tc.meta, err, tc.err)
			}
			continue
		}
		if err != nil || string(got) != tc.want || !json.Valid(got) {
			t.Errorf("mergeMeta(%s, %s) = %s, %v; want %s", tc.protocol, tc.meta, got, err, tc.want)
		}
	}
}

// FuzzRawResult feeds arbitrary bytes as a tool server's result: it must
// never panic, and whatever it accepts is a JSON object.
func FuzzRawResult(f *testing.F) {
	for _, s := range []string{`{"content":[]}`, `{"isError":true}`, `{"resultType":"input_required"}`, `[]`, `{`, `{"isError":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		res, err := rawResult(b)
		if err == nil && (!json.Valid(res.Result) || res.Result[0] != '{') {
			t.Fatalf("accepted %q, which is not a JSON object", b)
		}
	})
}

// FuzzRawCallParams checks that the encoded params are valid JSON whenever
// encoding succeeds, whatever the arguments and _meta bytes are.
func FuzzRawCallParams(f *testing.F) {
	f.Add("echo", []byte(`{"a":1}`), []byte(`{"m":2}`), true)
	f.Add("x\"y", []byte(`{}`), []byte(` { } `), false)
	f.Add("", []byte(`[`), []byte(`{"a":`), true)
	f.Fuzz(func(t *testing.T, name string, args, meta []byte, modern bool) {
		var protocol []byte
		if modern {
			protocol = []byte(`{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}`)
		}
		params, err := rawCallParams(Request{Name: name, Arguments: args, Meta: meta}, protocol)
		if err == nil && !json.Valid(params) {
			t.Fatalf("params %q are not valid JSON (name %q, args %q, meta %q)", params, name, args, meta)
		}
	})
}

func TestRawCallParamsRejectsSmuggledMembers(t *testing.T) {
	for _, tc := range []struct{ args, meta string }{
		{args: `{"a":1},"_meta":{"x":1}`},
		{args: `{"a":1}`, meta: `{"x":1},"name":"other"`},
		{args: `{"a":1}`, meta: `{"x":1}} {`},
	} {
		if params, err := rawCallParams(Request{Name: "echo", Arguments: json.RawMessage(tc.args), Meta: json.RawMessage(tc.meta)}, nil); err == nil {
			t.Errorf("args %s meta %s encoded as %s, want a rejection", tc.args, tc.meta, params)
		}
	}
}
