package traces

import (
	"context"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/agentauth/agentauth/agentauth/authz"
)

// clearOTelEnv unsets the variables New reads, so that the machine's
// environment cannot change a test.
func clearOTelEnv(t testing.TB) {
	t.Helper()
	for _, k := range []string{"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
		"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_EXPORT_TIMEOUT"} {
		t.Setenv(k, "")
	}
}

func newTelemetry(t *testing.T, opts ...Option) *Telemetry {
	t.Helper()
	tel, err := New(context.Background(), "agentauth-test", nil, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	return tel
}

func TestNewIsOffByDefault(t *testing.T) {
	clearOTelEnv(t)
	tel := newTelemetry(t)
	if tel.Exporting() {
		t.Error("exporting spans with no OTLP endpoint or exporter set")
	}
	_, span := tel.Tracer().Start(context.Background(), "x")
	if span.IsRecording() {
		t.Error("span records while tracing is off")
	}
	span.End()
}

func TestNewSelectsExporterFromEnv(t *testing.T) {
	cases := []struct {
		name      string
		env       map[string]string
		exporting bool
		err       string
	}{
		{"endpoint grpc", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, true, ""},
		{"endpoint http default", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:1/v1/traces"}, true, ""},
		{"exporter otlp", map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true, ""},
		{"exporter none wins", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}, false, ""},
		{"sdk disabled", map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, false, ""},
		{"unsupported exporter", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, false, `"zipkin" is not supported`},
		{"unsupported protocol", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, false, `"http/json" is not supported`},
		{"invalid queue size", map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_BSP_MAX_QUEUE_SIZE": "lots"}, false, "OTEL_BSP_MAX_QUEUE_SIZE"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clearOTelEnv(t)
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			tel, err := New(context.Background(), "agentauth-test", nil)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer tel.Shutdown(context.Background())
			if tel.Exporting() != c.exporting {
				t.Errorf("exporting = %v, want %v", tel.Exporting(), c.exporting)
			}
		})
	}
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestCollectorDownDropsSpans(t *testing.T) {
	for _, protocol := range []string{"grpc", "http/protobuf"} {
		t.Run(protocol, func(t *testing.T) {
			clearOTelEnv(t)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+closedPort(t))
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
			t.Setenv("OTEL_BSP_EXPORT_TIMEOUT", "200")
			tel := newTelemetry(t)
			tr := tel.Tracer()
			for range 10 {
				_, s := tr.Start(context.Background(), "tools/call echo")
				s.End()
			}
			if err := tel.ForceFlush(context.Background()); err != nil {
				t.Fatal(err)
			}
			if _, failed := tel.DroppedSpans(); failed != 10 {
				t.Errorf("export_failed = %d, want 10", failed)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := tel.Shutdown(ctx); err != nil && ctx.Err() != nil {
				t.Errorf("Shutdown did not return before its deadline: %v", err)
			}
		})
	}
}

func TestMetricsHandlerExposition(t *testing.T) {
	clearOTelEnv(t)
	tel := newTelemetry(t, WithSpanExporter(tracetest.NewInMemoryExporter()))
	ctx := context.Background()
	m := tel.Metrics()
	m.RecordDecision(ctx, authz.Decision{Effect: authz.Deny, Reason: authz.ReasonToolNotGranted})
	m.RecordCall(ctx, Request{Method: MethodToolsCall, Target: "echo"}, "", 3*time.Millisecond)
	m.RecordUpstreamError(ctx, "fs", "unavailable")
	unregister, err := m.RegisterActiveRuns(func(context.Context) (int64, error) { return 7, nil })
	if err != nil {
		t.Fatal(err)
	}
	defer unregister()

	rec := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`agentauth_decisions_total{`, `agentauth_decision="deny"`, `agentauth_decision_reason="tool_not_granted"`,
		`mcp_server_operation_duration_seconds_bucket{`, `gen_ai_tool_name="echo"`,
		`agentauth_upstream_errors_total{`, `agentauth_server="fs"`,
		`agentauth_runs_active{`, `} 7`,
		`agentauth_spans_dropped_total{agentauth_drop_reason="queue_full"`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("exposition lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("exposition:\n%s", body)
	}
}

func TestServiceNameFromEnv(t *testing.T) {
	clearOTelEnv(t)
	t.Setenv("OTEL_SERVICE_NAME", "gateway-eu")
	exp := tracetest.NewInMemoryExporter()
	tel := newTelemetry(t, WithSpanExporter(exp))
	_, s := tel.Tracer().Start(context.Background(), "x")
	s.End()
	if err := tel.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("got %d spans", len(spans))
	}
	for _, kv := range spans[0].Resource.Attributes() {
		if kv.Key == "service.name" && kv.Value.AsString() != "gateway-eu" {
			t.Errorf("service.name = %s, want gateway-eu", kv.Value.AsString())
		}
	}
}

func TestSetupInstallsGlobals(t *testing.T) {
	clearOTelEnv(t)
	shutdown, err := Setup(context.Background(), "agentauth-test", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(context.Background())
	if Default().Metrics() == nil || Instruments() == nil || MetricsHandler() == nil {
		t.Error("package accessors return nil after Setup")
	}
	Instruments().RecordDecision(context.Background(), authz.Decision{Effect: authz.Allow, Reason: authz.ReasonGranted})
	rec := httptest.NewRecorder()
	MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), `agentauth_decision="allow"`) {
		t.Error("the global handler does not serve the global instruments")
	}
}
