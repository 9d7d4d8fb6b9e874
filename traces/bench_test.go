package traces

import (
	"context"
	"syscall"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentauth/agentauth/agentauth/authz"
)

// discardExporter drops every span after it reached the exporter.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// tracedCall does what the gateway does per tool call: extract the
// caller's context from _meta, start the server span with the request
// attributes, record the decision, inject into the forwarded _meta, end.
func tracedCall(tr trace.Tracer, meta map[string]any, d authz.Decision) {
	req := Request{Method: MethodToolsCall, Target: "read_file", RequestID: "42",
		ProtocolVersion: "2025-11-25", Transport: TransportTCP}
	ctx := ExtractFromMeta(context.Background(), meta)
	ctx, span := tr.Start(ctx, SpanName(req.Method, req.Target),
		trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(req.Attributes()...))
	RecordDecision(span, d)
	_ = InjectIntoMeta(ctx, map[string]any{})
	span.End()
}

func benchTracedCall(b *testing.B, tr trace.Tracer) {
	meta := map[string]any{"traceparent": traceparent}
	d := threeHopDecision()
	b.ReportAllocs()
	start := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tracedCall(tr, meta, d)
		}
	})
	// CPU time per call, the export goroutine included; on a shared
	// machine it varies less than the wall time per call.
	b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
}

// processCPU returns the user and system CPU time of the process.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTracedCall measures the per-call cost of tracing with the SDK
// and agentauth's span queue in front of an exporter that discards.
func BenchmarkTracedCall(b *testing.B) {
	q := newSpanQueue(discardExporter{}, defaultQueueConfig(), func(error) {})
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(q))
	defer tp.Shutdown(context.Background())
	benchTracedCall(b, tp.Tracer(ScopeName))
	full, _ := q.Dropped()
	b.ReportMetric(float64(full)/float64(b.N), "dropped/op")
}

// BenchmarkTracedCallSDKBatcher is the same with the SDK's own
// BatchSpanProcessor, for comparison.
func BenchmarkTracedCallSDKBatcher(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardExporter{}))
	defer tp.Shutdown(context.Background())
	benchTracedCall(b, tp.Tracer(ScopeName))
}

// BenchmarkTracedCallOff is the same with tracing off (no exporter
// configured), where spans only carry the caller's context along.
func BenchmarkTracedCallOff(b *testing.B) {
	clearOTelEnv(b)
	tel, err := New(context.Background(), "bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	benchTracedCall(b, tel.Tracer())
}
