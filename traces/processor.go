package traces

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// queueConfig sizes the span queue. The defaults and the environment
// variables that override them are those of the OpenTelemetry batch span
// processor: OTEL_BSP_MAX_QUEUE_SIZE, OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
// OTEL_BSP_SCHEDULE_DELAY and OTEL_BSP_EXPORT_TIMEOUT (milliseconds).
type queueConfig struct {
	maxQueue      int
	maxBatch      int
	scheduleDelay time.Duration
	exportTimeout time.Duration
}

func defaultQueueConfig() queueConfig {
	return queueConfig{
		maxQueue:      2048,
		maxBatch:      512,
		scheduleDelay: 5 * time.Second,
		exportTimeout: 30 * time.Second,
	}
}

// spanQueue is a batch span processor that never blocks the caller and
// counts every span it loses.
//
// It does what the SDK's BatchSpanProcessor does, because that processor
// keeps its count of dropped spans in an unexported field and reports it
// only through experimental self-observability metrics, while the
// gateway must expose drops on its own metrics. A span that ends while
// the queue is full is dropped and counted as queue_full; the spans of a
// batch whose export fails are counted as export_failed. One goroutine
// calls the exporter, so exports never overlap.
type spanQueue struct {
	exporter sdktrace.SpanExporter
	cfg      queueConfig
	onError  func(error)

	queue   chan sdktrace.ReadOnlySpan
	flushes chan chan struct{}
	stop    chan struct{}
	done    chan struct{}

	stopOnce sync.Once
	stopped  atomic.Bool

	queueFull    atomic.Int64
	exportFailed atomic.Int64
	exported     atomic.Int64
}

var _ sdktrace.SpanProcessor = (*spanQueue)(nil)

func newSpanQueue(exp sdktrace.SpanExporter, cfg queueConfig, onError func(error)) *spanQueue {
	q := &spanQueue{
		exporter: exp,
		cfg:      cfg,
		onError:  onError,
		queue:    make(chan sdktrace.ReadOnlySpan, cfg.maxQueue),
		flushes:  make(chan chan struct{}),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	go q.run()
	return q
}

// OnStart does nothing: spans are queued when they end.
func (q *spanQueue) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd queues a sampled span for export, or drops it when the queue is
// full. It never blocks.
func (q *spanQueue) OnEnd(s sdktrace.ReadOnlySpan) {
	if q.stopped.Load() || !s.SpanContext().IsSampled() {
		return
	}
	select {
	case q.queue <- s:
	default:
		q.queueFull.Add(1)
	}
}

// ForceFlush exports every span queued before the call.
func (q *spanQueue) ForceFlush(ctx context.Context) error {
	if q.stopped.Load() {
		return nil
	}
	flushed := make(chan struct{})
	select {
	case q.flushes <- flushed:
	case <-q.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-flushed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown exports the queued spans and shuts the exporter down.
func (q *spanQueue) Shutdown(ctx context.Context) error {
	var err error
	q.stopOnce.Do(func() {
		q.stopped.Store(true)
		close(q.stop)
		select {
		case <-q.done:
		case <-ctx.Done():
			err = ctx.Err()
		}
		err = errors.Join(err, q.exporter.Shutdown(ctx))
	})
	return err
}

// Dropped returns the spans lost because the queue was full and because
// their export failed.
func (q *spanQueue) Dropped() (queueFull, exportFailed int64) {
	return q.queueFull.Load(), q.exportFailed.Load()
}

func (q *spanQueue) run() {
	defer close(q.done)
	batch := make([]sdktrace.ReadOnlySpan, 0, q.cfg.maxBatch)
	timer := time.NewTimer(q.cfg.scheduleDelay)
	defer timer.Stop()
	for {
		select {
		case s := <-q.queue:
			batch = append(batch, s)
			if len(batch) >= q.cfg.maxBatch {
				batch = q.export(batch)
				timer.Reset(q.cfg.scheduleDelay)
			}
		case <-timer.C:
			batch = q.export(batch)
			timer.Reset(q.cfg.scheduleDelay)
		case flushed := <-q.flushes:
			batch = q.drain(batch)
			close(flushed)
		case <-q.stop:
			q.drain(batch)
			return
		}
	}
}

// drain exports the batch and everything queued so far.
func (q *spanQueue) drain(batch []sdktrace.ReadOnlySpan) []sdktrace.ReadOnlySpan {
	for {
		select {
		case s := <-q.queue:
			batch = append(batch, s)
			if len(batch) >= q.cfg.maxBatch {
				batch = q.export(batch)
			}
		default:
			return q.export(batch)
		}
	}
}

// export sends a batch and returns it emptied for reuse.
func (q *spanQueue) export(batch []sdktrace.ReadOnlySpan) []sdktrace.ReadOnlySpan {
	if len(batch) == 0 {
		return batch
	}
	ctx, cancel := context.WithTimeout(context.Background(), q.cfg.exportTimeout)
	err := q.exporter.ExportSpans(ctx, batch)
	cancel()
	if err != nil {
		q.exportFailed.Add(int64(len(batch)))
		q.onError(err)
	} else {
		q.exported.Add(int64(len(batch)))
	}
	clear(batch)
	return batch[:0]
}
