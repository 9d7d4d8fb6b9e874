package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentauth/agentauth/agentauth/config"
)

// attackServer is a Streamable HTTP tool server on 127.0.0.1 that counts
// the sessions the gateway opens and ends, and records the session of each
// tools/call.
type attackServer struct {
	url     string
	hold    chan struct{} // closed to let every "hold" call return
	tokens  chan string   // upstream progress tokens that "hold" calls saw
	inits   atomic.Int64
	deletes atomic.Int64

	mu    sync.Mutex
	calls map[string]string // run argument -> Mcp-Session-Id
	swap  http.Handler      // when set, serves instead of the first server

	lateGo  chan struct{} // closed to make "late_ask" send its request
	lateErr chan error    // what the late sampling request got
	conns   atomic.Int64  // open connections to the server
}

func newAttackMCP(a *attackServer) *server.MCPServer {
	s := server.NewMCPServer("attack", "1.0", server.WithToolCapabilities(true), server.WithLogging())
	s.AddTool(mcp.NewTool("echo", mcp.WithDescription("echoes")), echoRaw)
	s.AddTool(mcp.NewTool("boom", mcp.WithDescription("fails the request")),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return nil, errors.New("disk on fire")
		})
	s.AddTool(mcp.NewTool("hold", mcp.WithDescription("waits until released")),
		func(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			if r.Params.Meta != nil && r.Params.Meta.ProgressToken != nil {
				a.tokens <- fmt.Sprint(r.Params.Meta.ProgressToken)
			}
			select {
			case <-a.hold:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return mcp.NewToolResultText("released"), nil
		})
	s.AddTool(mcp.NewTool("forge", mcp.WithDescription("sends progress under a token it is given")),
		func(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			err := server.ServerFromContext(ctx).SendNotificationToClient(ctx, "notifications/progress", map[string]any{
				"progressToken": r.GetString("token", ""), "progress": 1, "message": "forged by " + r.GetString("run", ""),
			})
			if err != nil {
				return mcp.NewToolResultError(err.Error()), nil
			}
			time.Sleep(100 * time.Millisecond)
			return mcp.NewToolResultText("sent"), nil
		})
	s.AddTool(mcp.NewTool("late_ask", mcp.WithDescription("asks for sampling after its call is over")),
		func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			later := context.WithoutCancel(ctx)
			go func() {
				<-a.lateGo
				ctx, cancel := context.WithTimeout(later, 10*time.Second)
				defer cancel()
				_, err := server.ServerFromContext(later).RequestSampling(ctx, mcp.CreateMessageRequest{CreateMessageParams: mcp.CreateMessageParams{
					Messages:  []mcp.SamplingMessage{{Role: mcp.RoleUser, Content: mcp.NewTextContent("late")}},
					MaxTokens: 5,
				}})
				a.lateErr <- err
			}()
			return mcp.NewToolResultText("asked later"), nil
		})
	s.AddTool(mcp.NewTool("log", mcp.WithDescription("logs a line naming its run")),
		func(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			_ = server.ServerFromContext(ctx).SendLogMessageToClient(ctx,
				mcp.NewLoggingMessageNotification(mcp.LoggingLevelError, "attack", "log of "+r.GetString("run", "")))
			time.Sleep(100 * time.Millisecond)
			return mcp.NewToolResultText("logged"), nil
		})
	return s
}

func startAttackServer(t *testing.T) *attackServer {
	t.Helper()
	a := &attackServer{hold: make(chan struct{}), tokens: make(chan string, 256), calls: map[string]string{},
		lateGo: make(chan struct{}), lateErr: make(chan error, 1)}
	first := server.NewStreamableHTTPServer(newAttackMCP(a))
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			a.deletes.Add(1)
		}
		if r.Method == http.MethodPost {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			var msg struct {
				Method string `json:"method"`
				Params struct {
					Arguments map[string]any `json:"arguments"`
				} `json:"params"`
			}
			_ = json.Unmarshal(body, &msg)
			switch msg.Method {
			case "initialize":
				a.inits.Add(1)
			case "tools/call":
				if run, ok := msg.Params.Arguments["run"].(string); ok {
					a.mu.Lock()
					a.calls[run] = r.Header.Get("Mcp-Session-Id")
					a.mu.Unlock()
				}
			}
		}
		a.mu.Lock()
		h := a.swap
		a.mu.Unlock()
		if h == nil {
			h = first
		}
		h.ServeHTTP(w, r)
	}))
	ts.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			a.conns.Add(1)
		case http.StateClosed, http.StateHijacked:
			a.conns.Add(-1)
		}
	}
	ts.Start()
	t.Cleanup(func() {
		a.release()
		ts.Close()
	})
	a.url = ts.URL + "/mcp"
	return a
}

var releaseMu sync.Mutex

func (a *attackServer) release() {
	releaseMu.Lock()
	defer releaseMu.Unlock()
	select {
	case <-a.hold:
	default:
		close(a.hold)
	}
}

func (a *attackServer) sessionOf(run string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls[run]
}

// attackSet opens a Set on the session revision (a sampling handler is
// set) with the attack server as "web".
func attackSet(t *testing.T, a *attackServer, opts Options) *Set {
	t.Helper()
	opts.Sampling = func(context.Context, string, mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
		return nil, errors.New("no model here")
	}
	return newSet(t, []config.Server{{Name: "web", URL: a.url}}, opts)
}

func runArgs(run string, extra map[string]any) json.RawMessage {
	m := map[string]any{"run": run}
	for k, v := range extra {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return b
}

// runState returns the number of run sessions and the sum of their busy
// counts.
func runState(s *Set) (n, busy int) {
	c := s.conns["web"]
	c.runs.mu.Lock()
	defer c.runs.mu.Unlock()
	for _, r := range c.runs.m {
		busy += r.busy
	}
	return len(c.runs.m), busy
}

// TestAttackForgedProgressStaysInRun checks that a progress notification
// arriving on run A's session reaches no call of run B, even when it names
// the upstream progress token of B's call. Tokens are agentauth-<n> with a
// counter shared by all runs, so a server can guess them.
func TestAttackForgedProgressStaysInRun(t *testing.T) {
	a := startAttackServer(t)
	s := attackSet(t, a, Options{})

	var mu sync.Mutex
	var seenByB []string
	done := make(chan error, 1)
	go func() {
		_, err := s.CallTool(callCtx(t), Request{Server: "web", Name: "hold", Run: "run-B",
			Arguments: runArgs("run-B", nil), Meta: json.RawMessage(`{"progressToken":"b-token"}`),
			Progress: func(p mcp.ProgressNotificationParams) {
				mu.Lock()
				seenByB = append(seenByB, p.Message)
				mu.Unlock()
			}})
		done <- err
	}()
	var token string
	select {
	case token = <-a.tokens:
	case <-time.After(20 * time.Second):
		t.Fatal("run-B's call never reached the server")
	}
	res, err := s.CallTool(callCtx(t), Request{Server: "web", Name: "forge", Run: "run-A",
		Arguments: runArgs("run-A", map[string]any{"token": token})})
	if err != nil || res.IsError {
		t.Fatalf("forge call of run-A: %v %v", err, res)
	}
	if a.sessionOf("run-A") == a.sessionOf("run-B") {
		t.Fatalf("run-A and run-B share session %s", a.sessionOf("run-A"))
	}
	a.release()
	if err := <-done; err != nil {
		t.Fatalf("hold call of run-B: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seenByB) > 0 {
		t.Errorf("run-B's caller got progress %q sent on run-A's session under token %s", seenByB, token)
	}
}

// TestAttackLogOnlyToOwnRun checks that a log message sent on run A's
// session during A's call never reaches a call of run B that is in flight
// at the same time.
func TestAttackLogOnlyToOwnRun(t *testing.T) {
	a := startAttackServer(t)
	type got struct{ run, data string }
	ch := make(chan got, 16)
	s := attackSet(t, a, Options{OnNotification: func(ctx context.Context, _ string, n mcp.JSONRPCNotification) {
		if n.Method != string(mcp.MethodNotificationMessage) {
			return
		}
		call, _ := ctx.Value(callKey{}).(*inflight)
		run := "<none>"
		if call != nil {
			run = call.run
		}
		ch <- got{run, fmt.Sprint(n.Params.AdditionalFields["data"])}
	}})
	done := make(chan error, 1)
	go func() {
		_, err := s.CallTool(callCtx(t), Request{Server: "web", Name: "hold", Run: "run-B", Arguments: runArgs("run-B", nil)})
		done <- err
	}()
	waitFor(t, "run-B's call in flight", func() bool { return a.sessionOf("run-B") != "" })
	if _, err := s.CallTool(callCtx(t), Request{Server: "web", Name: "log", Run: "run-A", Arguments: runArgs("run-A", nil)}); err != nil {
		t.Fatal(err)
	}
	a.release()
	<-done
	select {
	case g := <-ch:
		if g.run != "run-A" || g.data != "log of run-A" {
			t.Errorf("log %q relayed in the name of %s, want run-A", g.data, g.run)
		}
	case <-time.After(5 * time.Second):
		t.Error("run-A's log message, sent while run-A's call was the only one of run-A, was dropped")
	}
}

// TestAttackBusyReturnsToZero checks that calls that fail in every way a
// call can fail leave no run session marked busy.
func TestAttackBusyReturnsToZero(t *testing.T) {
	a := startAttackServer(t)
	s := attackSet(t, a, Options{})
	run := "run-fail"
	r := func(name string) Request {
		return Request{Server: "web", Name: name, Run: run, Arguments: runArgs(run, nil)}
	}
	if _, err := s.CallTool(callCtx(t), r("boom")); err == nil {
		t.Error("boom: no error")
	}
	if _, err := s.CallToolRaw(callCtx(t), r("boom")); err == nil {
		t.Error("raw boom: no error")
	}
	bad := r("echo")
	bad.Meta = json.RawMessage(`[1]`)
	if _, err := s.CallTool(callCtx(t), bad); err == nil {
		t.Error("CallTool with _meta an array: no error")
	}
	if _, err := s.CallToolRaw(callCtx(t), bad); err == nil {
		t.Error("CallToolRaw with _meta an array: no error")
	}
	withProgress := r("echo")
	withProgress.Progress = func(mcp.ProgressNotificationParams) {}
	if _, err := s.CallToolRaw(callCtx(t), withProgress); !errors.Is(err, ErrNotRaw) {
		t.Errorf("CallToolRaw with Progress: %v, want ErrNotRaw", err)
	}
	if _, err := s.GetPrompt(callCtx(t), Request{Server: "web", Name: "nope", Run: run}); err == nil {
		t.Error("GetPrompt of an unknown prompt: no error")
	}
	if _, err := s.ReadResource(callCtx(t), Request{Server: "web", Name: "file:///nope", Run: run}); err == nil {
		t.Error("ReadResource of an unknown resource: no error")
	}
	_, _ = s.Complete(callCtx(t), Request{Server: "web", Run: run},
		mcp.CompleteParams{Ref: mcp.PromptReference{Type: "ref/prompt", Name: "nope"}})
	// Cancelled mid-call, on both paths.
	for _, raw := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			waitFor(t, "hold in flight", func() bool { _, b := runState(s); return b > 0 })
			cancel()
		}()
		var err error
		if raw {
			_, err = s.CallToolRaw(ctx, r("hold"))
		} else {
			_, err = s.CallTool(ctx, r("hold"))
		}
		if err == nil {
			t.Errorf("cancelled hold (raw %v): no error", raw)
		}
		cancel()
	}
	// Cancelled before the call: the first call of a new run opens its
	// session under a context that has already ended.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _ = s.CallTool(ctx, Request{Server: "web", Name: "echo", Run: "run-dead", Arguments: runArgs("run-dead", nil)})
	_, _ = s.CallToolRaw(ctx, Request{Server: "web", Name: "echo", Run: "run-dead", Arguments: runArgs("run-dead", nil)})

	if n, busy := runState(s); busy != 0 {
		t.Errorf("%d run sessions with %d calls still marked busy after every call returned", n, busy)
	}
}

// TestAttackSessionCap checks the bound of 64 run sessions. With all 64
// busy, a further run's call uses the shared session and evicts none. Once
// they are idle, a further run evicts exactly one, the least recently used.
func TestAttackSessionCap(t *testing.T) {
	a := startAttackServer(t)
	s := attackSet(t, a, Options{})
	var wg sync.WaitGroup
	errs := make(chan error, maxRunSessions)
	for i := range maxRunSessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run := fmt.Sprintf("run-%02d", i)
			_, err := s.CallTool(callCtx(t), Request{Server: "web", Name: "hold", Run: run, Arguments: runArgs(run, nil)})
			if err != nil {
				errs <- fmt.Errorf("%s: %w", run, err)
			}
		}()
	}
	waitFor(t, "64 busy run sessions", func() bool { n, b := runState(s); return n == maxRunSessions && b == maxRunSessions })

	shared, _ := s.conns["web"].session()
	if _, err := s.CallTool(callCtx(t), Request{Server: "web", Name: "echo", Run: "run-extra", Arguments: runArgs("run-extra", nil)}); err != nil {
		t.Fatalf("call of a 65th run: %v", err)
	}
	if n, b := runState(s); n != maxRunSessions || b != maxRunSessions {
		t.Errorf("after a 65th run's call: %d sessions, %d busy; want %d and %d (no busy one evicted)", n, b, maxRunSessions, maxRunSessions)
	}
	if got, want := a.sessionOf("run-extra"), shared.client.GetSessionId(); got != want {
		t.Errorf("65th run's call used session %s, want the shared %s", got, want)
	}
	a.release()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// Touch every run but run-00 so that run-00 is the least recently used.
	time.Sleep(10 * time.Millisecond)
	c := s.conns["web"]
	c.runs.mu.Lock()
	for run, r := range c.runs.m {
		if run != "run-00" {
			r.last = time.Now()
		}
	}
	c.runs.mu.Unlock()
	before := a.deletes.Load()
	if _, err := s.CallTool(callCtx(t), Request{Server: "web", Name: "echo", Run: "run-new", Arguments: runArgs("run-new", nil)}); err != nil {
		t.Fatal(err)
	}
	c.runs.mu.Lock()
	_, old := c.runs.m["run-00"]
	_, fresh := c.runs.m["run-new"]
	n := len(c.runs.m)
	c.runs.mu.Unlock()
	if old || !fresh || n != maxRunSessions {
		t.Errorf("after a new run with 64 idle sessions: run-00 kept %v, run-new kept %v, %d sessions; want false, true, 64", old, fresh, n)
	}
	waitFor(t, "the evicted session's DELETE", func() bool { return a.deletes.Load() > before })
}

// TestAttackFullRunReopensEachCall checks that a run that found no room
// does not open (and at once close) a session on every call.
func TestAttackFullRunReopensEachCall(t *testing.T) {
	a := startAttackServer(t)
	s := attackSet(t, a, Options{})
	var wg sync.WaitGroup
	for i := range maxRunSessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run := fmt.Sprintf("run-%02d", i)
			_, _ = s.CallTool(callCtx(t), Request{Server: "web", Name: "hold", Run: run, Arguments: runArgs(run, nil)})
		}()
	}
	defer wg.Wait()
	defer a.release()
	waitFor(t, "64 busy run sessions", func() bool { _, b := runState(s); return b == maxRunSessions })
	before := a.inits.Load()
	for range 10 {
		if _, err := s.CallTool(callCtx(t), Request{Server: "web", Name: "echo", Run: "run-extra", Arguments: runArgs("run-extra", nil)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := a.inits.Load() - before; n > 1 {
		t.Errorf("10 calls of a run with no room sent %d initialize requests (each opened a session and closed it)", n)
	}
}

// TestAttackFirstCallsRace checks that many first calls of one run at once
// leave one session for the run, and end the others they opened.
func TestAttackFirstCallsRace(t *testing.T) {
	a := startAttackServer(t)
	s := attackSet(t, a, Options{})
	initsBefore, delBefore := a.inits.Load(), a.deletes.Load()
	const n = 16
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if _, err := s.CallToolRaw(callCtx(t), Request{Server: "web", Name: "echo", Run: "run-1", Arguments: runArgs("run-1", nil)}); err != nil {
				t.Error(err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if m, busy := runState(s); m != 1 || busy != 0 {
		t.Errorf("%d run sessions, %d busy after %d first calls of one run; want 1 and 0", m, busy, n)
	}
	opened := a.inits.Load() - initsBefore
	waitFor(t, "the extra sessions' DELETEs", func() bool { return a.deletes.Load()-delBefore == opened-1 })
}

// TestAttackServerRestartBehindURL checks that a run session the server
// lost (it restarted behind the same URL) is replaced. At most one call of
// the run fails, and the next uses a new session.
func TestAttackServerRestartBehindURL(t *testing.T) {
	a := startAttackServer(t)
	s := attackSet(t, a, Options{})
	call := func() error {
		_, err := s.CallTool(callCtx(t), Request{Server: "web", Name: "echo", Run: "run-1", Arguments: runArgs("run-1", nil)})
		return err
	}
	if err := call(); err != nil {
		t.Fatal(err)
	}
	old := a.sessionOf("run-1")

	// A fresh server returns 404 for the session it never issued, as a
	// server that lost its sessions does.
	fresh := server.NewStreamableHTTPServer(newAttackMCP(a))
	a.mu.Lock()
	a.swap = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Mcp-Session-Id") == old {
			http.NotFound(w, r)
			return
		}
		fresh.ServeHTTP(w, r)
	})
	a.mu.Unlock()
	first := call()
	second := call()
	if second != nil {
		t.Fatalf("second call after the server lost run-1's session: %v (first: %v)", second, first)
	}
	if now := a.sessionOf("run-1"); now == old {
		t.Errorf("run-1 still uses the session %s the server forgot", old)
	}
	t.Logf("first call after the restart: %v", first)
}

// TestAttackSharedEndClosesRunSessions checks that when the shared session
// ends, every run session is closed, and that runs get new sessions once
// the server is back.
func TestAttackSharedEndClosesRunSessions(t *testing.T) {
	a := startAttackServer(t)
	s := attackSet(t, a, Options{RestartMin: 10 * time.Millisecond, RestartMax: 50 * time.Millisecond})
	for _, run := range []string{"run-1", "run-2"} {
		if _, err := s.CallTool(callCtx(t), Request{Server: "web", Name: "echo", Run: run, Arguments: runArgs(run, nil)}); err != nil {
			t.Fatal(err)
		}
	}
	old1 := a.sessionOf("run-1")
	before := a.deletes.Load()
	shared, _ := s.conns["web"].session()
	shared.fail(errors.New("probe ends the shared session"))
	waitFor(t, "run sessions closed", func() bool { n, _ := runState(s); return n == 0 })
	waitFor(t, "DELETE of the shared and both run sessions", func() bool { return a.deletes.Load()-before >= 3 })
	waitFor(t, "the shared session back", func() bool { return s.Ready() == nil })
	if _, err := s.CallTool(callCtx(t), Request{Server: "web", Name: "echo", Run: "run-1", Arguments: runArgs("run-1", nil)}); err != nil {
		t.Fatal(err)
	}
	if a.sessionOf("run-1") == old1 {
		t.Error("run-1 kept its session across the shared session's restart")
	}
}

// TestAttackCallsAfterClose checks that calls after Close fail and open
// no run session.
func TestAttackCallsAfterClose(t *testing.T) {
	a := startAttackServer(t)
	s := attackSet(t, a, Options{})
	for i := range 8 {
		run := fmt.Sprintf("run-%d", i)
		if _, err := s.CallTool(callCtx(t), Request{Server: "web", Name: "echo", Run: run, Arguments: runArgs(run, nil)}); err != nil {
			t.Fatal(err)
		}
	}
	initsBefore := a.inits.Load()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, raw := range []bool{false, true} {
		r := Request{Server: "web", Name: "echo", Run: "run-late", Arguments: runArgs("run-late", nil)}
		var err error
		if raw {
			_, err = s.CallToolRaw(callCtx(t), r)
		} else {
			_, err = s.CallTool(callCtx(t), r)
		}
		if err == nil {
			t.Errorf("call after Close (raw %v) succeeded", raw)
		}
	}
	if n := a.inits.Load() - initsBefore; n != 0 {
		t.Errorf("calls after Close sent %d initialize requests", n)
	}
	if n, _ := runState(s); n != 0 {
		t.Errorf("%d run sessions kept after Close", n)
	}
}

// TestAttackCloseLeavesNoGoroutine checks that Close leaves no goroutine
// of the Set behind once its run sessions are closed.
func TestAttackCloseLeavesNoGoroutine(t *testing.T) {
	a := startAttackServer(t)
	base := runtime.NumGoroutine()
	s := attackSet(t, a, Options{})
	for i := range 8 {
		run := fmt.Sprintf("run-%d", i)
		if _, err := s.CallTool(callCtx(t), Request{Server: "web", Name: "echo", Run: run, Arguments: runArgs(run, nil)}); err != nil {
			t.Fatal(err)
		}
	}
	_ = s.Close()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base+2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base+2 {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines 10s after Close, %d before New\n%s", n, base, buf[:runtime.Stack(buf, true)])
	}
}

// TestAttackCloseRacesFirstCalls checks that first calls of new runs that
// race Close leave no run session open afterwards.
func TestAttackCloseRacesFirstCalls(t *testing.T) {
	a := startAttackServer(t)
	s := attackSet(t, a, Options{})
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run := fmt.Sprintf("run-%d", i)
			_, _ = s.CallTool(callCtx(t), Request{Server: "web", Name: "echo", Run: run, Arguments: runArgs(run, nil)})
		}()
	}
	time.Sleep(5 * time.Millisecond)
	_ = s.Close()
	wg.Wait()
	if n, _ := runState(s); n != 0 {
		t.Errorf("%d run sessions added after Close, which nothing will close", n)
	}
}

// TestAttackLateSamplingStaysInRun checks that a sampling request a server
// sends on run A's session after A's call is over is rejected while run B
// holds a call, and never handled in B's name.
func TestAttackLateSamplingStaysInRun(t *testing.T) {
	a := startAttackServer(t)
	asked := make(chan string, 4)
	s := newSet(t, []config.Server{{Name: "web", URL: a.url}}, Options{
		Sampling: func(ctx context.Context, _ string, _ mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			call, _ := ctx.Value(callKey{}).(*inflight)
			run := "<none>"
			if call != nil {
				run = call.run
			}
			asked <- run
			return &mcp.CreateMessageResult{SamplingMessage: mcp.SamplingMessage{Role: mcp.RoleAssistant, Content: mcp.NewTextContent("hi")}, Model: "m"}, nil
		},
	})
	if _, err := s.CallTool(callCtx(t), Request{Server: "web", Name: "late_ask", Run: "run-A", Arguments: runArgs("run-A", nil)}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.CallTool(callCtx(t), Request{Server: "web", Name: "hold", Run: "run-B", Arguments: runArgs("run-B", nil)})
		done <- err
	}()
	waitFor(t, "run-B's call in flight", func() bool { return a.sessionOf("run-B") != "" })

	close(a.lateGo)
	var err error
	select {
	case err = <-a.lateErr:
	case <-time.After(20 * time.Second):
		t.Fatal("the late sampling request never ended")
	}
	a.release()
	<-done
	select {
	case run := <-asked:
		t.Errorf("run-A's late sampling request was handled in the name of %s", run)
	default:
	}
	if err == nil {
		t.Error("run-A's late sampling request got an answer with no call of run-A in flight")
	}
	t.Logf("late sampling request: %v", err)
}

// TestAttackSweepKeepsBusy checks that the idle sweep closes an idle run
// session and keeps a busy one however old.
func TestAttackSweepKeepsBusy(t *testing.T) {
	a := startAttackServer(t)
	s := attackSet(t, a, Options{})
	if _, err := s.CallTool(callCtx(t), Request{Server: "web", Name: "echo", Run: "run-idle", Arguments: runArgs("run-idle", nil)}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.CallTool(callCtx(t), Request{Server: "web", Name: "hold", Run: "run-busy", Arguments: runArgs("run-busy", nil)})
		done <- err
	}()
	waitFor(t, "run-busy in flight", func() bool { _, b := runState(s); return b == 1 })
	before := a.deletes.Load()
	c := s.conns["web"]
	c.runs.sweep(time.Now().Add(time.Hour), runSessionIdle)
	c.runs.mu.Lock()
	_, idle := c.runs.m["run-idle"]
	_, busy := c.runs.m["run-busy"]
	c.runs.mu.Unlock()
	if idle || !busy {
		t.Errorf("after a sweep an hour on: idle kept %v, busy kept %v; want false, true", idle, busy)
	}
	waitFor(t, "the idle session's DELETE", func() bool { return a.deletes.Load() > before })
	a.release()
	if err := <-done; err != nil {
		t.Errorf("busy call across the sweep: %v", err)
	}
}

// TestAttackClosedSessionsKeepNoConnection checks that a run session that
// was closed leaves no connection to the server open.
func TestAttackClosedSessionsKeepNoConnection(t *testing.T) {
	a := startAttackServer(t)
	s := attackSet(t, a, Options{})
	base := a.conns.Load()
	for i := range 8 {
		run := fmt.Sprintf("run-%d", i)
		if _, err := s.CallTool(callCtx(t), Request{Server: "web", Name: "echo", Run: run, Arguments: runArgs(run, nil)}); err != nil {
			t.Fatal(err)
		}
	}
	open := a.conns.Load()
	c := s.conns["web"]
	c.runs.sweep(time.Now().Add(time.Hour), runSessionIdle)
	deadline := time.Now().Add(10 * time.Second)
	for a.conns.Load() > base && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := a.conns.Load(); n > base {
		t.Errorf("%d connections open 10s after the 8 run sessions were closed; %d with them open, %d before them", n, open, base)
	}
}

// TestAttackAddKeepsDeadSession checks that when a run's session failed
// after the run's call found none, the new session is kept rather than
// the failed one handed out.
func TestAttackAddKeepsDeadSession(t *testing.T) {
	a := startAttackServer(t)
	s := attackSet(t, a, Options{})
	if _, err := s.CallTool(callCtx(t), Request{Server: "web", Name: "echo", Run: "run-1", Arguments: runArgs("run-1", nil)}); err != nil {
		t.Fatal(err)
	}
	c := s.conns["web"]
	fresh, err := c.openRun(callCtx(t), "run-1")
	if err != nil {
		t.Fatal(err)
	}
	// Its transport fails, as checkTransport records, between the call's
	// take (which found nothing) and its add.
	c.runs.mu.Lock()
	dead := c.runs.m["run-1"].sess
	c.runs.mu.Unlock()
	dead.fail(errors.New("transport failed"))
	got, release, ok := c.runs.add("run-1", fresh, c)
	if !ok {
		t.Fatal("add reported no room")
	}
	defer release()
	if got == dead {
		t.Error("add handed out run-1's failed session and closed the new one")
	}
}
