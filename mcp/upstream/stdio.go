package upstream

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
)

// ErrLineTooLong ends a stdio connection whose server wrote a message line
// over Options.MaxLineBytes.
var ErrLineTooLong = errors.New("upstream: stdio message line over the limit")

// inheritedEnv lists the variables a stdio server inherits from the
// gateway. The rest of its environment comes from the server's env
// configuration, so no other gateway variable reaches a tool server.
var inheritedEnv = []string{"HOME", "LANG", "LC_ALL", "LOGNAME", "PATH", "SHELL", "TERM", "TMPDIR", "TZ", "USER"}

// process is a running stdio server.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when its stdout ends
	end  error         // the error that ended stdout; read after done
	once sync.Once
}

// startProcess starts the server's command and returns a transport over
// its stdin and stdout. mcp-go's stdio transport reads lines without a
// bound, so stdout is wrapped in a reader that fails a line over maxLine.
func startProcess(command []string, env map[string]string, maxLine int, logger *slog.Logger) (*process, transport.Interface, error) {
	cmd := exec.Command(command[0], command[1:]...)
	cmd.Env = serverEnv(env)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start %q: %w", command[0], err)
	}

	p := &process{cmd: cmd, done: make(chan struct{})}
	go logStderr(stderr, logger)
	lines := &lineLimiter{r: stdout, max: maxLine, end: p.ended}
	return p, transport.NewIO(lines, stdin, nil), nil
}

func serverEnv(extra map[string]string) []string {
	var env []string
	for _, k := range inheritedEnv {
		if v, ok := os.LookupEnv(k); ok {
			if _, override := extra[k]; !override {
				env = append(env, k+"="+v)
			}
		}
	}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+extra[k])
	}
	return env
}

func (p *process) ended(err error) {
	p.once.Do(func() {
		p.end = err
		close(p.done)
	})
}

// stop ends the process: a polite SIGTERM to its process group, then
// SIGKILL after grace, and reaps it.
func (p *process) stop(grace time.Duration) error {
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	waited := make(chan error, 1)
	go func() { waited <- p.cmd.Wait() }()
	select {
	case err := <-waited:
		return err
	case <-time.After(grace):
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	return <-waited
}

// lineLimiter passes reads through and fails once a line, counted since
// the last newline, grows past max bytes. It calls end once with the error
// that ended the stream (io.EOF, ErrLineTooLong or a read error).
type lineLimiter struct {
	r    io.Reader
	max  int
	cur  int
	end  func(error)
	fail error
}

func (l *lineLimiter) Read(p []byte) (int, error) {
	if l.fail != nil {
		return 0, l.fail
	}
	n, err := l.r.Read(p)
	for i := 0; i < n; i++ {
		if p[i] == '\n' {
			l.cur = 0
			continue
		}
		l.cur++
		if l.cur > l.max {
			l.fail = fmt.Errorf("%w (%d bytes)", ErrLineTooLong, l.max)
			l.end(l.fail)
			return i, l.fail
		}
	}
	if err != nil {
		l.fail = err
		l.end(err)
	}
	return n, err
}

// logStderr logs each stderr line of a server at debug level, cut to 1 KiB.
// It reads until the pipe closes, so the server never blocks on a full pipe.
func logStderr(r io.Reader, logger *slog.Logger) {
	br := bufio.NewReaderSize(r, 4096)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if len(line) > 1024 {
				line = line[:1024]
			}
			logger.Debug("upstream stderr", "line", string(line))
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}
