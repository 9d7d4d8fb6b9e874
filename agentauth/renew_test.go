package agentauth_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentauth/agentauth/agentauth"
	"github.com/agentauth/agentauth/agentauth/control/api"
)

// logCounter is a slog handler that counts records by message.
type logCounter struct {
	mu   sync.Mutex
	seen map[string]int
}

func newLogCounter() *logCounter { return &logCounter{seen: map[string]int{}} }

func (c *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *logCounter) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *logCounter) WithGroup(string) slog.Handler            { return c }
func (c *logCounter) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	c.seen[r.Message]++
	c.mu.Unlock()
	return nil
}

func (c *logCounter) count(msg string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[msg]
}

const (
	msgRenewed  = "agentauth: SVID renewed"
	msgRetrying = "agentauth: SVID renewal failed; retrying"
	msgStopped  = "agentauth: the run's SVID will not be renewed again"
)

// enrollTTL starts a run that lasts ttl and returns its enrollment.
func (g *gateway) enrollTTL(tb testing.TB, ttl string) agentauth.Enrollment {
	tb.Helper()
	resp, err := agentauth.DialSocket(g.socket).StartRun(context.Background(),
		api.StartRunRequest{Agent: "researcher", Grants: []string{"read"}, Purpose: "renewal test", TTL: ttl})
	if err != nil {
		tb.Fatal(err)
	}
	return agentauth.Enrollment{Control: g.controlURL, BootstrapToken: resp.BootstrapToken,
		RunID: resp.Run.ID, SPIFFEID: resp.Run.SPIFFEID, TrustBundle: g.bundlePath,
		ExpiresAt: resp.Run.ExpiresAt}
}

// waitDone waits for the run to stop renewing and returns its error.
func waitDone(t *testing.T, run *agentauth.Run, within time.Duration) error {
	t.Helper()
	select {
	case <-run.Done():
		return run.Err()
	case <-time.After(within):
		t.Fatalf("renewal still running %s later; err %v", within, run.Err())
		return nil
	}
}

// A 4 s run with 2 s SVIDs needs two renewals to reach its expiry (three
// when the SDK must learn the expiry from an SVID that did not grow);
// then renewal stops and the run reports that it expired.
func TestRenewalStopsAtRunExpiry(t *testing.T) {
	g := startGateway(t, 2*time.Second)
	for _, tc := range []struct {
		name        string
		knowsExpiry bool
		maxRenewals int
	}{{"expiry known", true, 2}, {"expiry learned", false, 3}} {
		t.Run(tc.name, func(t *testing.T) {
			e := g.enrollTTL(t, "4s")
			if !tc.knowsExpiry {
				e.ExpiresAt = time.Time{}
			}
			logs := newLogCounter()
			run, err := agentauth.JoinEnrollment(context.Background(), e, agentauth.WithLogger(slog.New(logs)))
			if err != nil {
				t.Fatal(err)
			}
			defer run.Close()
			if err := run.Err(); err != nil {
				t.Fatalf("Err before the run ended = %v", err)
			}
			err = waitDone(t, run, 15*time.Second)
			if !errors.Is(err, agentauth.ErrRunExpired) {
				t.Errorf("Err = %v; want ErrRunExpired", err)
			}
			if n := logs.count(msgRenewed); n == 0 {
				t.Error("never renewed")
			}
			if n := logs.count(msgRenewed); n > tc.maxRenewals {
				t.Errorf("renewed %d times; want at most %d", n, tc.maxRenewals)
			}
			if n := logs.count(msgStopped); n != 1 {
				t.Errorf("logged the end of renewal %d times; want once", n)
			}
			if err := run.Close(); err != nil {
				t.Error(err)
			}
			if !errors.Is(run.Err(), agentauth.ErrRunExpired) {
				t.Errorf("Close replaced the reason: %v", run.Err())
			}
		})
	}
}

func TestRenewalStopsWhenRevoked(t *testing.T) {
	g := startGateway(t, 2*time.Second)
	e := g.enrollTTL(t, "1m")
	logs := newLogCounter()
	run, err := agentauth.JoinEnrollment(context.Background(), e, agentauth.WithLogger(slog.New(logs)))
	if err != nil {
		t.Fatal(err)
	}
	defer run.Close()
	if _, err := agentauth.DialSocket(g.socket).Revoke(context.Background(), e.RunID, "test"); err != nil {
		t.Fatal(err)
	}
	err = waitDone(t, run, 10*time.Second)
	var apiErr *agentauth.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("Err = %v; want the gateway's rejection", err)
	}
	if apiErr.Code != api.CodeForbidden && apiErr.Code != api.CodeUnauthenticated {
		t.Errorf("rejection code = %s; want %s or %s", apiErr.Code, api.CodeForbidden, api.CodeUnauthenticated)
	}
	if n := logs.count(msgRetrying); n != 0 {
		t.Errorf("retried a rejected renewal %d times", n)
	}
}

// With the gateway gone, failed renewals back off (1 s, 2 s, ...) and
// stop when the SVID expires instead of retrying with a dead certificate.
func TestRenewalBacksOffUntilSVIDExpiry(t *testing.T) {
	g, stop, err := newGateway(t.TempDir(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	e := g.enrollTTL(t, "1h")
	logs := newLogCounter()
	run, err := agentauth.JoinEnrollment(context.Background(), e, agentauth.WithLogger(slog.New(logs)))
	if err != nil {
		stop()
		t.Fatal(err)
	}
	defer run.Close()
	stop()
	err = waitDone(t, run, 20*time.Second)
	if !errors.Is(err, agentauth.ErrRunExpired) {
		t.Errorf("Err = %v; want ErrRunExpired", err)
	}
	// About 5 s of SVID remain at the first renewal: attempts at +0, +1
	// and +3 s, then it expires at +5 s. Retrying every second would fail
	// five times.
	if n := logs.count(msgRetrying); n == 0 {
		t.Error("no failed renewal was logged")
	}
	if n := logs.count(msgRetrying); n > 3 {
		t.Errorf("retried %d times in the SVID's last 5 s; want at most 3", n)
	}
}

func TestEnrollmentExpiryEnvironment(t *testing.T) {
	want := time.Date(2026, 1, 2, 15, 4, 5, 600, time.UTC)
	e := agentauth.Enrollment{Control: "https://127.0.0.1:1", BootstrapToken: "t", TrustBundle: "b", ExpiresAt: want}
	for _, kv := range e.Environ() {
		k, v, _ := cut(kv)
		t.Setenv(k, v)
	}
	got, err := agentauth.EnrollmentFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if !got.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %v; want %v", got.ExpiresAt, want)
	}

	for _, bad := range []string{"tomorrow", "2026-13-01T00:00:00Z", strings.Repeat("9", 10000)} {
		t.Setenv(agentauth.EnvRunExpires, bad)
		if _, err := agentauth.EnrollmentFromEnv(); err == nil {
			t.Errorf("%s=%.20q accepted", agentauth.EnvRunExpires, bad)
		}
	}
	t.Setenv(agentauth.EnvRunExpires, "")
	if got, err := agentauth.EnrollmentFromEnv(); err != nil || !got.ExpiresAt.IsZero() {
		t.Errorf("unset expiry: %v, %v; want zero and no error", got.ExpiresAt, err)
	}
}
