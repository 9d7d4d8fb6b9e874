// Package jaegertest starts a real Jaeger for tests and reads back the
// spans it received. Jaeger runs from the binary that
// `go tool task tools` builds into .bin/, with an in-memory store and
// every listener on a free loopback port. A test that needs it fails
// when the binary is missing, and skips with -short.
package jaegertest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/agentauth/agentauth/internal/testenv"
)

// Jaeger is a running Jaeger process.
type Jaeger struct {
	// OTLPGRPC and OTLPHTTP are the host:port of the OTLP receivers.
	OTLPGRPC string
	OTLPHTTP string
	// QueryURL is the base URL of the query HTTP API.
	QueryURL string

	healthURL string
	cmd       *exec.Cmd
	logPath   string
	client    *http.Client
}

// startTimeout bounds how long Start waits for Jaeger to report healthy.
const startTimeout = 60 * time.Second

// Start runs Jaeger until the test ends. Ports are picked free just
// before the start, so another process can take one in between; Start
// then tries again with new ports, up to three times.
func Start(t testing.TB) *Jaeger {
	t.Helper()
	bin := testenv.Tool(t, "jaeger")
	var lastErr error
	for attempt := range 3 {
		j, err := start(t, bin, attempt)
		if err == nil {
			return j
		}
		lastErr = err
	}
	t.Fatalf("jaegertest: %v", lastErr)
	return nil
}

func start(t testing.TB, bin string, attempt int) (*Jaeger, error) {
	ports, err := freePorts(5)
	if err != nil {
		return nil, err
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, fmt.Sprintf("jaeger-%d.yaml", attempt))
	if err := writeConfig(cfgPath, ports); err != nil {
		return nil, err
	}
	j := &Jaeger{
		OTLPGRPC:  ports[0],
		OTLPHTTP:  ports[1],
		QueryURL:  "http://" + ports[2],
		healthURL: "http://" + ports[4] + "/status",
		logPath:   filepath.Join(dir, fmt.Sprintf("jaeger-%d.log", attempt)),
		client:    &http.Client{Timeout: 10 * time.Second},
	}
	if err := j.run(bin, cfgPath); err != nil {
		return nil, err
	}
	if err := j.waitHealthy(); err != nil {
		j.stop()
		return nil, fmt.Errorf("%w\n%s", err, j.logTail())
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("jaeger log:\n%s", j.logTail())
		}
		j.stop()
	})
	return j, nil
}

// run starts the process with the OTEL_* variables of the test removed,
// so that Jaeger does not export its own telemetry anywhere.
func (j *Jaeger) run(bin, cfgPath string) error {
	logFile, err := os.Create(j.logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	j.cmd = exec.Command(bin, "--config=file:"+cfgPath)
	j.cmd.Stdout, j.cmd.Stderr = logFile, logFile
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OTEL_") {
			j.cmd.Env = append(j.cmd.Env, kv)
		}
	}
	if err := j.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	return nil
}

func (j *Jaeger) waitHealthy() error {
	exited := make(chan error, 1)
	go func() { exited <- j.cmd.Wait() }()
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			j.cmd = nil
			return fmt.Errorf("jaeger exited during start: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
		resp, err := j.client.Get(j.healthURL)
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			go func() { <-exited }()
			return nil
		}
	}
	return fmt.Errorf("jaeger was not healthy at %s after %v", j.healthURL, startTimeout)
}

// stop ends the process it started: SIGTERM, then SIGKILL after 5 s.
func (j *Jaeger) stop() {
	if j.cmd == nil || j.cmd.Process == nil {
		return
	}
	p := j.cmd.Process
	_ = p.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		for p.Signal(syscall.Signal(0)) == nil {
			time.Sleep(50 * time.Millisecond)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = p.Kill()
	}
	j.cmd = nil
}

func (j *Jaeger) logTail() string {
	data, _ := os.ReadFile(j.logPath)
	if len(data) > 8000 {
		data = data[len(data)-8000:]
	}
	return string(data)
}

// Env returns the OTEL_* variables that send a process's spans to this
// Jaeger over protocol, grpc or http/protobuf.
func (j *Jaeger) Env(protocol string) []string {
	endpoint := "http://" + j.OTLPHTTP
	if protocol == "grpc" {
		endpoint = "http://" + j.OTLPGRPC
	}
	return []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + endpoint,
		"OTEL_EXPORTER_OTLP_PROTOCOL=" + protocol,
		"OTEL_TRACES_EXPORTER=otlp",
	}
}

// Setenv sets the variables of Env in the test's own environment.
func (j *Jaeger) Setenv(t testing.TB, protocol string) {
	t.Helper()
	for _, kv := range j.Env(protocol) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

func freePorts(n int) ([]string, error) {
	var addrs []string
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}

// configTemplate is tools/jaeger/config.yaml with the ports filled in and
// Jaeger's own metrics listener off.
var configTemplate = template.Must(template.New("jaeger").Parse(`service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    traces:
      level: none
    logs:
      level: warn
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: {{index . 2}}
    grpc:
      endpoint: {{index . 3}}
  healthcheckv2:
    use_v2: true
    http:
      endpoint: {{index . 4}}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: {{index . 0}}
      http:
        endpoint: {{index . 1}}
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`))

func writeConfig(path string, ports []string) error {
	var buf bytes.Buffer
	if err := configTemplate.Execute(&buf, ports); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o600)
}

// get fetches a query API path into dst's JSON decoder.
func (j *Jaeger) get(ctx context.Context, path string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.QueryURL+path, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(resp.Body)
	return buf.Bytes(), resp.StatusCode, err
}
