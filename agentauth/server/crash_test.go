package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/agentauth/agentauth/agentauth"
	"github.com/agentauth/agentauth/agentauth/audit"
	"github.com/agentauth/agentauth/agentauth/authz"
	"github.com/agentauth/agentauth/agentauth/control/api"
	"github.com/agentauth/agentauth/internal/testenv"
)

// The test binary doubles as the recording tool server: the gateway starts
// it with these variables in its environment.
const (
	recorderEnv      = "AGENTAUTH_CRASH_RECORDER"
	recorderCallsEnv = "CRASH_CALLS_FILE"
	recorderPidsEnv  = "CRASH_PIDS_FILE"
)

// Crash test shape: in each of crashRounds rounds, workers call
// concurrently until the tool server has recorded killAfter more calls,
// then the gateway is killed with SIGKILL and started again. Even rounds
// send SIGTERM first and SIGKILL drainDelay later, to kill the gateway
// while it drains in-flight calls.
const (
	crashRounds    = 3
	drainDelay     = 20 * time.Millisecond
	crashWorkers   = 8
	killAfter      = 400
	recorderServer = "rec"
	recorderTool   = "record"
)

func TestMain(m *testing.M) {
	if os.Getenv(recorderEnv) == "1" {
		os.Exit(runRecorder())
	}
	os.Exit(m.Run())
}

// recordedCall is one line of the recorder's calls file: the call id and
// the exact raw arguments the tool server received.
type recordedCall struct {
	ID  string `json:"id"`
	Raw string `json:"raw"`
}

// runRecorder serves one tool over stdio. The tool appends every call it
// receives to the calls file and fsyncs the file before it responds.
func runRecorder() int {
	if err := appendLine(os.Getenv(recorderPidsEnv), strconv.Itoa(os.Getpid())); err != nil {
		fmt.Fprintln(os.Stderr, "recorder: write pid:", err)
		return 1
	}
	f, err := os.OpenFile(os.Getenv(recorderCallsEnv), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "recorder: open calls file:", err)
		return 1
	}
	defer f.Close()
	var mu sync.Mutex
	s := mcpserver.NewMCPServer("recorder", "1", mcpserver.WithToolCapabilities(true))
	s.AddTool(mcp.NewTool(recorderTool, mcp.WithDescription("records the call id durably"),
		mcp.WithString("id", mcp.Required())),
		func(_ context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			id, err := r.RequireString("id")
			if err != nil {
				return mcp.NewToolResultError(err.Error()), nil
			}
			line, _ := json.Marshal(recordedCall{ID: id, Raw: string(r.Params.RawArguments)})
			mu.Lock()
			defer mu.Unlock()
			if _, err := f.Write(append(line, '\n')); err != nil {
				return nil, err
			}
			if err := f.Sync(); err != nil {
				return nil, err
			}
			return mcp.NewToolResultText("recorded " + id), nil
		})
	if err := mcpserver.ServeStdio(s); err != nil {
		fmt.Fprintln(os.Stderr, "recorder:", err)
		return 1
	}
	return 0
}

func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(line + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

const crashPolicy = `
agents:
  writer:
    grants: [record]
grants:
  record:
    tools: [{server: rec, names: [record]}]
    budget: 1000000
entitlements:
  - sponsors: {issuer: local}
    agents: [writer]
    grants: [record]
`

// crashEnv is one gateway configuration in a temporary directory, reused
// across the gateway's restarts.
type crashEnv struct {
	bin, dir, config, stateDir, socket string
	mcpAddr, controlAddr, adminAddr    string
	callsFile, pidsFile                string
}

// TestAuditSurvivesGatewayKill checks the audit log's durability promise
// on the real `agentauth serve` process. A call reaches its tool server
// only after its decision record is committed. So after a SIGKILL under
// concurrent load, every call the tool server received has an allow
// record, the chain verifies, and the gateway restarts on the same state.
// It runs with each audit.sync mode, since both promise this.
//
// NOTE: a killed process loses nothing already written to the kernel, so
// this checks the order of commit and forward but not the fsync itself,
// which only a power loss would show.
func TestAuditSurvivesGatewayKill(t *testing.T) {
	bin := buildAgentauth(t)
	for _, sync := range []string{"normal", "full"} {
		t.Run("sync="+sync, func(t *testing.T) { testGatewayKill(t, newCrashEnv(t, bin, sync)) })
	}
}

func testGatewayKill(t *testing.T, env *crashEnv) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()

	var run *agentauth.Run
	var heads []string
	for round := 1; round <= crashRounds; round++ {
		gw := env.start(t)
		env.waitReady(ctx, t, gw)
		if run == nil {
			var err error
			run, err = agentauth.StartRun(ctx, agentauth.DialSocket(env.socket),
				api.StartRunRequest{Agent: "writer", Grants: []string{"record"}, Purpose: "crash test"},
				agentauth.Enrollment{Gateway: "https://" + env.mcpAddr + "/mcp", Control: "https://" + env.controlAddr})
			if err != nil {
				t.Fatalf("start run: %v\n%s", err, gw.logs())
			}
			defer run.Close()
		}
		env.crash(ctx, t, gw, run, round)
		if t.Failed() {
			return
		}
		heads = append(heads, "--checkpoint", logHead(ctx, t, env.stateDir))
	}
	env.restartAndCall(ctx, t, run, heads)
}

// crash drives calls through the gateway until the tool server has
// recorded killAfter more of them, kills the gateway with SIGKILL, and
// checks the audit log against every call the tool server ever received.
func (e *crashEnv) crash(ctx context.Context, t *testing.T, gw *gateway, run *agentauth.Run, round int) {
	t.Helper()
	load := startLoad(ctx, t, run, fmt.Sprintf("r%d", round))
	if err := e.waitCalls(ctx, killAfter*round); err != nil {
		load.stop()
		t.Fatalf("%v; load errors: %v\n%s", err, load.errs(), gw.logs())
	}
	load.markKilled()
	signals := "SIGKILL"
	if round%2 == 0 {
		signals = "SIGTERM, exited before SIGKILL,"
		if gw.terminateThenKill(t, drainDelay) {
			signals = "SIGTERM then SIGKILL"
		}
	} else {
		gw.kill(t)
	}
	e.killRecorders(t)
	load.stop()
	if errs := load.errsBeforeKill(); len(errs) > 0 {
		t.Errorf("round %d: %d calls failed before the kill, first: %v", round, len(errs), errs[0])
	}

	calls := e.readCalls(t)
	for id := range load.succeeded() {
		if _, ok := calls[id]; !ok {
			t.Errorf("call %s succeeded at the agent but the tool server has no record of it", id)
		}
	}
	e.verify(ctx, t)
	decisions, results := checkRecords(ctx, t, e.stateDir, run.ID(), calls)
	t.Logf("round %d: %s with %d calls received by the tool server in all (%d answered to the agent "+
		"this round); the audit log holds %d allow decisions and %d call results",
		round, signals, len(calls), len(load.succeeded()), decisions, results)
}

// newCrashEnv writes the configuration of a gateway run by bin with the
// audit.sync mode sync.
func newCrashEnv(t *testing.T, bin, sync string) *crashEnv {
	t.Helper()
	// A Unix socket path is limited to 108 bytes on Linux, and a path
	// under t.TempDir can be longer than that.
	dir, err := os.MkdirTemp("", "aacrash")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	e := &crashEnv{bin: bin, dir: dir, config: filepath.Join(dir, "agentauth.yaml"),
		stateDir: filepath.Join(dir, "state"), socket: filepath.Join(dir, "ctl.sock"),
		callsFile: filepath.Join(dir, "calls.jsonl"), pidsFile: filepath.Join(dir, "recorder.pids"),
		mcpAddr: freeAddr(t), controlAddr: freeAddr(t), adminAddr: freeAddr(t)}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte(crashPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`state_dir: %q
policy: %q
log: {level: info}
listen:
  mcp: %q
  control: %q
  admin: %q
  control_socket: %q
audit:
  record_arguments: true
  sync: %s
servers:
  - name: %s
    command: [%q]
    env:
      %s: "1"
      %s: %q
      %s: %q
`, e.stateDir, policy, e.mcpAddr, e.controlAddr, e.adminAddr, e.socket, sync, recorderServer, self,
		recorderEnv, recorderCallsEnv, e.callsFile, recorderPidsEnv, e.pidsFile)
	if err := os.WriteFile(e.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.killRecorders(t) })
	return e
}

// buildAgentauth builds the command into a temporary folder and returns
// its path.
func buildAgentauth(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "agentauth")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/agentauth")
	cmd.Dir = testenv.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build agentauth: %v\n%s", err, out)
	}
	return bin
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago, for a listener of another process.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// cleanEnv is the test's environment without AGENTAUTH_ variables, so that
// only the configuration file configures the commands it runs.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AGENTAUTH_") {
			env = append(env, kv)
		}
	}
	return env
}

// gateway is one `agentauth serve` process.
type gateway struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{}
	err    error // read after exited is closed
}

func (e *crashEnv) start(t *testing.T) *gateway {
	t.Helper()
	g := &gateway{out: &syncBuffer{}, exited: make(chan struct{})}
	g.cmd = exec.Command(e.bin, "serve", "--config", e.config)
	g.cmd.Env = cleanEnv()
	g.cmd.Stdout, g.cmd.Stderr = g.out, g.out
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Wait returns this long after the gateway exits even when a process it
	// left behind still holds its output pipe.
	g.cmd.WaitDelay = 2 * time.Second
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("start agentauth serve: %v", err)
	}
	go func() { g.err = g.cmd.Wait(); close(g.exited) }()
	t.Cleanup(func() { g.kill(t) })
	return g
}

// kill ends the gateway with SIGKILL and waits until it is gone.
func (g *gateway) kill(t *testing.T) {
	t.Helper()
	select {
	case <-g.exited:
		return
	default:
	}
	if err := g.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("kill gateway %d: %v", g.cmd.Process.Pid, err)
	}
	<-g.exited
}

// terminateThenKill sends SIGTERM, which starts the graceful shutdown, and
// SIGKILL after delay unless the gateway has exited by then. It reports
// whether it sent SIGKILL.
func (g *gateway) terminateThenKill(t *testing.T, delay time.Duration) bool {
	t.Helper()
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("signal gateway %d: %v", g.cmd.Process.Pid, err)
	}
	select {
	case <-g.exited:
		return false
	case <-time.After(delay):
		g.kill(t)
		return true
	}
}

// stop ends the gateway with SIGTERM, its graceful shutdown, and returns
// how it exited.
func (g *gateway) stop(t *testing.T) error {
	t.Helper()
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("signal gateway: %v", err)
	}
	select {
	case <-g.exited:
		return g.err
	case <-time.After(20 * time.Second):
		g.kill(t)
		return errors.New("the gateway did not stop within 20s of SIGTERM")
	}
}

func (g *gateway) logs() string { return "gateway output:\n" + g.out.String() }

// waitReady polls /readyz until it returns 200, failing when the gateway
// exits first.
func (e *crashEnv) waitReady(ctx context.Context, t *testing.T, g *gateway) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+e.adminAddr+"/readyz", nil)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-g.exited:
			t.Fatalf("agentauth serve exited before it was ready: %v\n%s", g.err, g.logs())
		case <-ctx.Done():
			t.Fatalf("agentauth serve not ready on %s: %v\n%s", e.adminAddr, ctx.Err(), g.logs())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitCalls waits until the tool server has recorded at least n calls.
func (e *crashEnv) waitCalls(ctx context.Context, n int) error {
	ctx, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	for {
		b, _ := os.ReadFile(e.callsFile)
		got := bytes.Count(b, []byte("\n"))
		if got >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the tool server recorded %d calls, want %d: %w", got, n, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// killRecorders sends SIGKILL to the process group of every recorder the
// gateway started and waits until each is gone. The gateway starts stdio
// servers in their own process group, so killing the gateway alone does
// not reach them.
func (e *crashEnv) killRecorders(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(e.pidsFile)
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 1 {
			t.Errorf("bad pid %q in %s", f, e.pidsFile)
			continue
		}
		if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			t.Errorf("kill recorder group %d: %v", pid, err)
		}
		waitGone(t, pid)
	}
}

// waitGone waits until pid no longer runs (gone or a zombie).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("recorder %d still runs 5s after SIGKILL", pid)
}

// readCalls returns the calls the tool server recorded, by id. A call is
// recorded once: a second line with the same id is an error.
func (e *crashEnv) readCalls(t *testing.T) map[string]recordedCall {
	t.Helper()
	b, err := os.ReadFile(e.callsFile)
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]recordedCall{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var c recordedCall
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Errorf("calls file line %q: %v", sc.Text(), err)
			continue
		}
		if _, dup := calls[c.ID]; dup {
			t.Errorf("the tool server received call %s twice", c.ID)
		}
		calls[c.ID] = c
	}
	return calls
}

// verify runs `agentauth audit verify` and fails unless it exits 0.
func (e *crashEnv) verify(ctx context.Context, t *testing.T, extra ...string) {
	t.Helper()
	args := append([]string{"audit", "verify", "--config", e.config}, extra...)
	cmd := exec.CommandContext(ctx, e.bin, args...)
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("agentauth %s: %v\n%s", strings.Join(args, " "), err, out)
		return
	}
	t.Logf("agentauth audit verify: %s", bytes.TrimSpace(out))
}

// checkRecords opens the audit log read-only and checks that every call
// the tool server received has an allow decision whose arguments digest
// and recorded arguments are those of the call. It returns the number of
// such decisions and of their call results.
func checkRecords(ctx context.Context, t *testing.T, stateDir, runID string, calls map[string]recordedCall) (int, int) {
	t.Helper()
	l, err := audit.Open(audit.PathIn(stateDir), audit.ReadOnly())
	if err != nil {
		t.Fatalf("open audit log: %v", err)
	}
	defer l.Close()
	recs, err := l.Query(ctx, audit.Filter{Server: recorderServer, Tool: recorderTool})
	if err != nil {
		t.Fatal(err)
	}

	allowed := map[string]audit.Record{} // by arguments digest
	results := 0
	for _, r := range recs {
		switch {
		case r.Kind == audit.KindDecision && r.Effect == authz.Allow:
			allowed[r.ArgumentsDigest] = r
		case r.Kind == audit.KindCallResult:
			results++
		}
	}

	missing := 0
	for id, c := range calls {
		digest := audit.DigestArguments([]byte(c.Raw))
		r, ok := allowed[digest]
		if !ok {
			missing++
			if missing <= 10 {
				t.Errorf("call %s reached the tool server with arguments %s but has no allow decision (digest %s)",
					id, c.Raw, digest)
			}
			continue
		}
		var args struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(r.Arguments, &args); err != nil || args.ID != id {
			t.Errorf("decision %d for call %s records arguments %s", r.Seq, id, r.Arguments)
		}
		if r.RunID != runID {
			t.Errorf("decision %d for call %s names run %q, want %q", r.Seq, id, r.RunID, runID)
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d calls received by the tool server have no allow decision in the audit log",
			missing, len(calls))
	}
	return len(allowed), results
}

// restartAndCall starts the gateway again on the same state and checks
// that it gets ready, that the run still calls through it and that the
// call is on record. The log must then verify against the heads seen after
// each crash, passed in checkpoints as --checkpoint flags.
func (e *crashEnv) restartAndCall(ctx context.Context, t *testing.T, run *agentauth.Run, checkpoints []string) {
	t.Helper()
	gw := e.start(t)
	e.waitReady(ctx, t, gw)
	c, err := run.MCPClient(ctx, "crash-after-restart")
	if err != nil {
		t.Fatalf("client after restart: %v\n%s", err, gw.logs())
	}
	defer c.Close()
	const id = "after-restart"
	if _, err := callRecord(ctx, c, id); err != nil {
		t.Fatalf("call after restart: %v\n%s", err, gw.logs())
	}
	if err := gw.stop(t); err != nil {
		t.Errorf("gateway exit after SIGTERM: %v\n%s", err, gw.logs())
	}
	e.killRecorders(t)
	calls := e.readCalls(t)
	if _, ok := calls[id]; !ok {
		t.Fatalf("the tool server did not record the call made after the restart")
	}
	checkRecords(ctx, t, e.stateDir, run.ID(), map[string]recordedCall{id: calls[id]})
	e.verify(ctx, t, checkpoints...)
}

// logHead returns the audit log's head as SEQ:HASH.
func logHead(ctx context.Context, t *testing.T, stateDir string) string {
	t.Helper()
	l, err := audit.Open(audit.PathIn(stateDir), audit.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	seq, hash, err := l.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d:%s", seq, hash)
}

func callRecord(ctx context.Context, c *client.Client, id string) (*mcp.CallToolResult, error) {
	req := mcp.CallToolRequest{}
	req.Params.Name = recorderServer + "__" + recorderTool
	req.Params.Arguments = map[string]any{"id": id}
	res, err := c.CallTool(ctx, req)
	if err != nil {
		return nil, err
	}
	if res.IsError {
		return nil, fmt.Errorf("call %s: tool error %+v", id, res.Content)
	}
	return res, nil
}

// load drives calls from several workers, each with its own client, until
// stopped. Call ids start with a prefix unique to the load.
type load struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	killed  bool
	ok      map[string]bool
	before  []error // failures before the kill
	allErrs []error
}

func startLoad(ctx context.Context, t *testing.T, run *agentauth.Run, prefix string) *load {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	l := &load{cancel: cancel, ok: map[string]bool{}}
	for w := range crashWorkers {
		c, err := run.MCPClient(ctx, fmt.Sprintf("crash-worker-%d", w))
		if err != nil {
			cancel()
			t.Fatalf("client %d: %v", w, err)
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer c.Close()
			for i := 0; ctx.Err() == nil; i++ {
				id := fmt.Sprintf("%s-w%d-%06d", prefix, w, i)
				_, err := callRecord(ctx, c, id)
				if !l.note(id, err) {
					return
				}
			}
		}()
	}
	return l
}

// note records one call's outcome and reports whether the worker goes on.
func (l *load) note(id string, err error) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil {
		l.ok[id] = true
		return true
	}
	l.allErrs = append(l.allErrs, err)
	if !l.killed {
		l.before = append(l.before, err)
	}
	return false
}

// markKilled notes that the gateway is about to be killed: failures from
// now on are expected.
func (l *load) markKilled() {
	l.mu.Lock()
	l.killed = true
	l.mu.Unlock()
}

// stop ends the workers and waits for them. Failures from now on are
// expected too.
func (l *load) stop() {
	l.markKilled()
	l.cancel()
	l.wg.Wait()
}

func (l *load) errsBeforeKill() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.before
}

func (l *load) errs() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.allErrs
}

func (l *load) succeeded() map[string]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ok
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a child
// process's stdout and stderr.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
