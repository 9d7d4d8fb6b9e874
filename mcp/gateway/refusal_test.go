package gateway

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/agentauth/agentauth/agentauth/audit"
	"github.com/agentauth/agentauth/agentauth/authz"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
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

func counterValue(t *testing.T, reader *sdkmetric.ManualReader, name string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == name {
				var n int64
				for _, dp := range sum.DataPoints {
					n += dp.Value
				}
				return n
			}
		}
	}
	return 0
}

func TestUnauthenticatedRequestsAreCountedNotAudited(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	var logs syncBuffer
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	h := newHarness(t, func(o *Options) {
		o.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		o.Now = func() time.Time { return now }
	})
	anonymous := h.ca.httpClient(t, "")
	bodies := []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"calc__add","arguments":{}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"p":1,"P":2}}}`,
		`not json`,
	}
	for i := range 12 {
		status, body := h.post(t, anonymous, bodies[i%len(bodies)], nil)
		if status != http.StatusUnauthorized || denialReason(t, body) != string(authz.ReasonUnauthenticated) {
			t.Fatalf("status %d body %v, want 401 unauthenticated", status, body)
		}
	}
	if recs := h.audit.records(); len(recs) != 0 {
		t.Errorf("unauthenticated requests wrote %d audit records", len(recs))
	}
	if n := counterValue(t, reader, MetricUnauthenticated); n != 12 {
		t.Errorf("%s = %d, want 12", MetricUnauthenticated, n)
	}
	if n := strings.Count(logs.String(), "rejected unauthenticated request"); n != 1 {
		t.Errorf("%d log lines for 12 refusals within one second, want 1:\n%s", n, logs.String())
	}
	now = now.Add(2 * time.Second)
	h.post(t, anonymous, bodies[0], nil)
	if !strings.Contains(logs.String(), "suppressed_since_last=11") {
		t.Errorf("the next line does not count the 11 suppressed ones:\n%s", logs.String())
	}
}

func TestMalformedRequestsAreCounted(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	h := newHarness(t, func(o *Options) {
		o.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	})
	h.post(t, h.ca.httpClient(t, runID(runA)), `{"jsonrpc":"2.0","id":1,"method":"ping","x":1}`, nil)
	if n := counterValue(t, reader, MetricMalformed); n != 1 {
		t.Errorf("%s = %d, want 1", MetricMalformed, n)
	}
	recs := h.audit.records()
	if len(recs) != 1 || recs[0].Method != "" {
		t.Errorf("records %+v, want one without a method", recs)
	}
	h.post(t, h.ca.httpClient(t, runID(runA)),
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fs__read","arguments":{"a":1,"A":2}}}`, nil)
	if recs := h.audit.records(); len(recs) != 2 || recs[1].Method != "tools/call" ||
		!strings.Contains(recs[1].Decision.Message, `"a" and "A"`) {
		t.Errorf("records %+v, want the second to name tools/call and both names", recs)
	}
}

func TestUnknownToolIsADeniedDecision(t *testing.T) {
	h := newHarness(t)
	hc := h.ca.httpClient(t, runID(runA))
	for _, name := range []string{"fs__nope", "fs__hidden", "nul\\u0000name", "fs__read\\u0000"} {
		t.Run(name, func(t *testing.T) {
			before := len(h.audit.records())
			status, body := h.post(t, hc, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"`+name+`","arguments":{"path":"/granted/a"}}}`, nil)
			if status != http.StatusOK || denialReason(t, body) != string(authz.ReasonToolNotGranted) {
				t.Fatalf("status %d body %v, want a tool_not_granted denial", status, body)
			}
			recs := h.audit.records()[before:]
			if len(recs) != 1 {
				t.Fatalf("%d audit records, want 1", len(recs))
			}
			r := recs[0]
			if r.Malformed || r.Decision.Effect != authz.Deny || r.Decision.Reason != authz.ReasonToolNotGranted ||
				r.Target.Kind != authz.KindTool || r.RunID != runA || len(r.Decision.Chain) == 0 || r.ArgumentsDigest == "" {
				t.Errorf("record = %+v", r)
			}
		})
	}
	if n := h.upstream.callCount(); n != 0 {
		t.Errorf("%d calls to unknown tools were forwarded", n)
	}
}

// TestRefusalsReachTheAuditLog writes a malformed request and a call to
// an unknown tool to the real SQLite audit log.
func TestRefusalsReachTheAuditLog(t *testing.T) {
	l, err := audit.Open(filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	h := newHarness(t, func(o *Options) { o.Auditor = AuditLog(l) })
	hc := h.ca.httpClient(t, runID(runA))
	h.post(t, hc, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fs__read","arguments":{"path":"/granted/a","PATH":"/etc/hostname"}}}`, nil)
	h.post(t, hc, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"fs__no\u0000pe","arguments":{}}}`, nil)
	h.post(t, h.ca.httpClient(t, ""), `{"jsonrpc":"2.0","id":3,"method":"ping"}`, nil)

	recs, err := l.Query(context.Background(), audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2: %+v", len(recs), recs)
	}
	var malformed, unknown audit.Record
	for _, r := range recs {
		if r.Kind == audit.KindMalformedRequest {
			malformed = r
		} else {
			unknown = r
		}
	}
	if malformed.Effect != authz.Deny || malformed.Reason != authz.ReasonMalformedRequest || malformed.RunID != runA ||
		malformed.Method != "tools/call" || len(malformed.Chain) == 0 || strings.Contains(malformed.Message, "/etc/hostname") {
		t.Errorf("malformed record = %+v", malformed)
	}
	if unknown.Kind != audit.KindDecision || unknown.Reason != authz.ReasonToolNotGranted || unknown.Tool != "no\x00pe" {
		t.Errorf("unknown tool record = %+v", unknown)
	}
	if rep, err := l.Verify(context.Background()); err != nil {
		t.Errorf("verify: %v %+v", err, rep)
	}
}
