package traces

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// gatedExporter records spans and blocks every export until released.
type gatedExporter struct {
	mu      sync.Mutex
	spans   []string
	gate    chan struct{}
	fail    error
	entered chan struct{}
}

func (e *gatedExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if e.entered != nil {
		select {
		case e.entered <- struct{}{}:
		default:
		}
	}
	if e.gate != nil {
		select {
		case <-e.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if e.fail != nil {
		return e.fail
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range spans {
		e.spans = append(e.spans, s.Name())
	}
	return nil
}

func (e *gatedExporter) Shutdown(context.Context) error { return nil }

func (e *gatedExporter) names() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.spans...)
}

func newTestQueue(t *testing.T, exp sdktrace.SpanExporter, cfg queueConfig) (*spanQueue, *sdktrace.TracerProvider, *[]error) {
	t.Helper()
	var errs []error
	var mu sync.Mutex
	q := newSpanQueue(exp, cfg, func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() })
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(q))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return q, tp, &errs
}

func endSpans(tp *sdktrace.TracerProvider, n int) {
	tr := tp.Tracer("test")
	for range n {
		_, s := tr.Start(context.Background(), "s")
		s.End()
	}
}

func TestQueueFlushExportsEverything(t *testing.T) {
	exp := &gatedExporter{}
	q, tp, _ := newTestQueue(t, exp, queueConfig{maxQueue: 100, maxBatch: 7, scheduleDelay: time.Hour, exportTimeout: time.Second})
	endSpans(tp, 50)
	if err := q.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := len(exp.names()); got != 50 {
		t.Errorf("exported %d spans, want 50", got)
	}
	if full, failed := q.Dropped(); full != 0 || failed != 0 {
		t.Errorf("dropped %d, %d; want none", full, failed)
	}
}

func TestQueueExportsOnSchedule(t *testing.T) {
	exp := &gatedExporter{}
	_, tp, _ := newTestQueue(t, exp, queueConfig{maxQueue: 100, maxBatch: 50, scheduleDelay: 10 * time.Millisecond, exportTimeout: time.Second})
	endSpans(tp, 3)
	deadline := time.Now().Add(10 * time.Second)
	for len(exp.names()) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("exported %d spans without a flush, want 3", len(exp.names()))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestQueueDropsWhenFullWithoutBlocking(t *testing.T) {
	exp := &gatedExporter{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	q, tp, _ := newTestQueue(t, exp, queueConfig{maxQueue: 10, maxBatch: 5, scheduleDelay: time.Hour, exportTimeout: time.Minute})
	// Fill one batch so that the exporter is entered and stays blocked.
	endSpans(tp, 5)
	<-exp.entered
	// The queue holds 10 more; the rest are dropped, and ending them
	// returns although the exporter is stuck.
	endSpans(tp, 25)
	full, _ := q.Dropped()
	if full != 15 {
		t.Errorf("queue_full drops = %d, want 15", full)
	}
	close(exp.gate)
	if err := q.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := len(exp.names()); got != 15 {
		t.Errorf("exported %d spans, want 15", got)
	}
}

func TestQueueCountsFailedExports(t *testing.T) {
	exp := &gatedExporter{fail: errors.New("collector down")}
	q, tp, errs := newTestQueue(t, exp, queueConfig{maxQueue: 100, maxBatch: 4, scheduleDelay: time.Hour, exportTimeout: time.Second})
	endSpans(tp, 10)
	if err := q.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, failed := q.Dropped(); failed != 10 {
		t.Errorf("export_failed drops = %d, want 10", failed)
	}
	if len(*errs) != 3 {
		t.Errorf("reported %d export errors, want 3 (batches of 4, 4, 2)", len(*errs))
	}
}

func TestQueueShutdownFlushes(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	q := newSpanQueue(exp, queueConfig{maxQueue: 100, maxBatch: 10, scheduleDelay: time.Hour, exportTimeout: time.Second}, func(error) {})
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(q))
	endSpans(tp, 12)
	spansBefore := len(exp.GetSpans())
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The in-memory exporter clears its spans on Shutdown, so check the
	// count the queue kept.
	if got := q.exported.Load(); got != 12 {
		t.Errorf("exported %d spans by shutdown (%d before), want 12", got, spansBefore)
	}
	endSpans(tp, 1) // after shutdown: ignored, no panic
	if err := q.ForceFlush(context.Background()); err != nil {
		t.Errorf("ForceFlush after shutdown: %v", err)
	}
}

func TestQueueShutdownHonorsDeadline(t *testing.T) {
	exp := &gatedExporter{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	q := newSpanQueue(exp, queueConfig{maxQueue: 10, maxBatch: 1, scheduleDelay: time.Hour, exportTimeout: time.Hour}, func(error) {})
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(q))
	endSpans(tp, 1)
	<-exp.entered
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := tp.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown with a stuck exporter = %v, want the deadline error", err)
	}
	close(exp.gate)
}
