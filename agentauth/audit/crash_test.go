package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// childEnv names the log a re-executed test binary works on, and so
// marks the process as a child.
const childEnv = "AGENTAUTH_AUDIT_CHILD_LOG"

// startChild re-executes the test binary running only the named test,
// with its stdout on a pipe.
func startChild(t *testing.T, test, path string, extraEnv ...string) (*exec.Cmd, io.ReadCloser) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(append(os.Environ(), childEnv+"="+path), extraEnv...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, out
}

// TestCrashChildAppender appends from 16 goroutines until killed and
// prints "ack SEQ MESSAGE" for every Append that returned success.
func TestCrashChildAppender(t *testing.T) {
	path := os.Getenv(childEnv)
	if path == "" {
		t.Skip("runs only as the child of TestCrashKeepsAcknowledgedRecords")
	}
	l, err := Open(path, WithFsync(os.Getenv(crashFsyncEnv) != "off"))
	if err != nil {
		fmt.Printf("error %v\n", err)
		return
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				rec := decisionRecord(i)
				rec.Message = fmt.Sprintf("w%d-%d", w, i)
				seq, err := l.Append(context.Background(), rec)
				if err != nil {
					fmt.Printf("error %v\n", err)
					return
				}
				mu.Lock()
				fmt.Printf("ack %d %s\n", seq, rec.Message)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// crashFsyncEnv tells the crash child whether to fsync ("on") or only
// write ("off") each commit.
const crashFsyncEnv = "AGENTAUTH_AUDIT_CRASH_FSYNC"

// TestCrashKeepsAcknowledgedRecords kills an appending process and checks
// that every acknowledged record is there, with and without fsync: a
// process kill leaves written pages to the operating system either way.
func TestCrashKeepsAcknowledgedRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	for _, fsync := range []string{"on", "off"} {
		t.Run("fsync "+fsync, func(t *testing.T) {
			t.Setenv(crashFsyncEnv, fsync)
			checkCrashKeepsAcknowledged(t)
		})
	}
}

func checkCrashKeepsAcknowledged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	cmd, out := startChild(t, "TestCrashChildAppender", path)

	acks := map[uint64]string{}
	r := bufio.NewReader(out)
	deadline := time.Now().Add(10 * time.Second)
	killed := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			break // EOF after the kill; a partial last line is not an ack
		}
		if seq, msg, ok := parseAck(t, line); ok {
			acks[seq] = msg
		}
		if !killed && (len(acks) >= 3000 || time.Now().After(deadline)) {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	_ = cmd.Wait()
	if !killed {
		t.Fatalf("child exited before it was killed, after %d acks", len(acks))
	}
	if len(acks) == 0 {
		t.Fatal("child acknowledged no records")
	}

	l, err := Open(path)
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer l.Close()
	rep, err := l.Verify(context.Background())
	if err != nil {
		t.Fatalf("Verify after kill: %v", err)
	}
	recs, err := l.Query(context.Background(), Filter{})
	if err != nil {
		t.Fatal(err)
	}
	stored := map[uint64]string{}
	for _, r := range recs {
		stored[r.Seq] = r.Message
	}
	for seq, msg := range acks {
		if got, ok := stored[seq]; !ok || got != msg {
			t.Errorf("acknowledged seq %d (%s): stored %q, present %v", seq, msg, got, ok)
		}
	}
	t.Logf("%d acknowledged, %d stored, head %d", len(acks), rep.Records, rep.HeadSeq)
}

func parseAck(t *testing.T, line string) (uint64, string, bool) {
	t.Helper()
	fields := strings.Fields(line)
	if len(fields) >= 1 && fields[0] == "error" {
		t.Errorf("child: %s", line)
		return 0, "", false
	}
	if len(fields) != 3 || fields[0] != "ack" {
		return 0, "", false
	}
	seq, err := strconv.ParseUint(fields[1], 10, 64)
	if err != nil {
		t.Errorf("child printed %q", line)
		return 0, "", false
	}
	return seq, fields[2], true
}

// failClosedResult is what the fail-closed child reports as JSON.
type failClosedResult struct {
	Before      int    // appends that succeeded before the limit
	FirstError  string // the first Append error under the limit
	ErrSet      bool   // Err reported the failure
	FailedAfter int    // appends that failed after the first failure
	Recovered   bool   // Append succeeded once the limit was lifted
	ErrCleared  bool   // Err returned nil after recovery
	VerifyErr   string // Verify after recovery
}

// TestFailClosedChild lowers the file size limit so that writes to the
// log fail with EFBIG, then reports how Append behaves.
func TestFailClosedChild(t *testing.T) {
	path := os.Getenv(childEnv)
	if path == "" {
		t.Skip("runs only as the child of TestAppendFailsClosed")
	}
	var res failClosedResult
	defer func() { _ = json.NewEncoder(os.Stdout).Encode(res) }()
	l, err := Open(path)
	if err != nil {
		res.FirstError = "open: " + err.Error()
		return
	}
	defer l.Close()
	ctx := context.Background()
	for i := range 20 {
		if _, err := l.Append(ctx, decisionRecord(i)); err != nil {
			res.FirstError = "before limit: " + err.Error()
			return
		}
		res.Before++
	}

	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		res.FirstError = "getrlimit: " + err.Error()
		return
	}
	limit := fileSize(path) + fileSize(path+"-wal")
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: uint64(limit), Max: old.Max}); err != nil {
		res.FirstError = "setrlimit: " + err.Error()
		return
	}
	for i := 0; i < 20000 && res.FirstError == ""; i++ {
		if _, err := l.Append(ctx, decisionRecord(i)); err != nil {
			res.FirstError = err.Error()
		}
	}
	res.ErrSet = l.Err() != nil
	for i := range 3 {
		if _, err := l.Append(ctx, decisionRecord(i)); err != nil {
			res.FailedAfter++
		}
	}

	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		return
	}
	_, err = l.Append(ctx, decisionRecord(0))
	res.Recovered = err == nil
	res.ErrCleared = l.Err() == nil
	if _, err := l.Verify(ctx); err != nil {
		res.VerifyErr = err.Error()
	}
}

func fileSize(path string) int64 {
	info, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return info.Size()
}

func TestAppendFailsClosed(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	path := filepath.Join(t.TempDir(), "audit.db")
	cmd, out := startChild(t, "TestFailClosedChild", path)
	var res failClosedResult
	data, _ := io.ReadAll(out)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, data)
	}
	// The child's stdout also holds the testing package's PASS line.
	first, _, _ := strings.Cut(string(data), "\n")
	if err := json.Unmarshal([]byte(first), &res); err != nil {
		t.Fatalf("child output %q: %v", data, err)
	}
	if res.Before != 20 {
		t.Fatalf("appends before the limit = %d, want 20 (%s)", res.Before, res.FirstError)
	}
	if res.FirstError == "" {
		t.Fatal("no Append failed with writes to the file refused")
	}
	if !strings.Contains(res.FirstError, "audit: append to") {
		t.Errorf("first error = %q, want it to name the log", res.FirstError)
	}
	if !res.ErrSet {
		t.Error("Err returned nil while writes failed")
	}
	if res.FailedAfter != 3 {
		t.Errorf("%d of 3 appends failed while the limit held, want 3", res.FailedAfter)
	}
	if !res.Recovered || !res.ErrCleared {
		t.Errorf("after lifting the limit: recovered %v, Err cleared %v", res.Recovered, res.ErrCleared)
	}
	if res.VerifyErr != "" {
		t.Errorf("Verify after recovery: %s", res.VerifyErr)
	}
	t.Logf("first error: %s", res.FirstError)
}
