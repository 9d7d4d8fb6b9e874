package traces

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/agentauth/agentauth/agentauth/authz"
)

// Metric names. MetricServerOperationDuration is the one the MCP semantic
// conventions define; the others are agentauth's.
const (
	MetricServerOperationDuration = "mcp.server.operation.duration"
	MetricDecisions               = "agentauth.decisions"
	MetricUpstreamErrors          = "agentauth.upstream.errors"
	MetricActiveRuns              = "agentauth.runs.active"
	MetricDroppedSpans            = "agentauth.spans.dropped"
)

// AttrDropReason is why spans were dropped: queue_full or export_failed.
const AttrDropReason = attribute.Key("agentauth.drop.reason")

// durationBuckets are the bucket boundaries, in seconds, that the MCP
// semantic conventions advise for operation durations.
var durationBuckets = []float64{0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300}

// Metrics holds the gateway's instruments.
type Metrics struct {
	meter          metric.Meter
	decisions      metric.Int64Counter
	callDuration   metric.Float64Histogram
	upstreamErrors metric.Int64Counter
}

func newMetrics(meter metric.Meter, queue *spanQueue) (*Metrics, error) {
	m := &Metrics{meter: meter}
	var errs [4]error
	m.decisions, errs[0] = meter.Int64Counter(MetricDecisions, metric.WithUnit("{decision}"),
		metric.WithDescription("Authorization decisions, by effect and reason."))
	m.callDuration, errs[1] = meter.Float64Histogram(MetricServerOperationDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of MCP requests handled by the gateway, upstream time included."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	m.upstreamErrors, errs[2] = meter.Int64Counter(MetricUpstreamErrors, metric.WithUnit("{error}"),
		metric.WithDescription("Failed calls to upstream tool servers, by server and error type."))
	errs[3] = registerDropped(meter, queue)
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	return m, nil
}

// registerDropped exposes the span queue's drop counts. Without a queue
// (tracing off) nothing is ever dropped and the counter stays at zero.
func registerDropped(meter metric.Meter, queue *spanQueue) error {
	full := metric.WithAttributeSet(attribute.NewSet(AttrDropReason.String("queue_full")))
	failed := metric.WithAttributeSet(attribute.NewSet(AttrDropReason.String("export_failed")))
	_, err := meter.Int64ObservableCounter(MetricDroppedSpans, metric.WithUnit("{span}"),
		metric.WithDescription("Spans lost because the export queue was full or the export failed."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			var queueFull, exportFailed int64
			if queue != nil {
				queueFull, exportFailed = queue.Dropped()
			}
			o.Observe(queueFull, full)
			o.Observe(exportFailed, failed)
			return nil
		}))
	return err
}

// RecordDecision counts one authorization decision.
func (m *Metrics) RecordDecision(ctx context.Context, d authz.Decision) {
	m.decisions.Add(ctx, 1, metric.WithAttributes(
		AttrDecision.String(string(d.Effect)), AttrReason.String(string(d.Reason))))
}

// RecordCall records the duration of one MCP request. errorType is empty
// for a success, otherwise the error.type of the span.
func (m *Metrics) RecordCall(ctx context.Context, r Request, errorType string, d time.Duration) {
	kv := make([]attribute.KeyValue, 0, 5)
	kv = append(kv, AttrMCPMethodName.String(r.Method))
	switch r.Method {
	case MethodToolsCall:
		kv = append(kv, AttrGenAIToolName.String(r.Target), AttrGenAIOperationName.String(OperationExecuteTool))
	case MethodPromptsGet:
		kv = append(kv, AttrGenAIPromptName.String(r.Target))
	}
	kv = appendString(kv, AttrMCPProtocolVersion, r.ProtocolVersion)
	kv = appendString(kv, AttrErrorType, errorType)
	m.callDuration.Record(ctx, d.Seconds(), metric.WithAttributes(kv...))
}

// RecordUpstreamError counts one failed call to an upstream tool server.
func (m *Metrics) RecordUpstreamError(ctx context.Context, server, errorType string) {
	m.upstreamErrors.Add(ctx, 1, metric.WithAttributes(
		AttrServer.String(server), AttrErrorType.String(errorType)))
}

// RegisterActiveRuns exposes the number of active runs, which count
// returns when the metrics are collected. Call the returned function to
// stop.
func (m *Metrics) RegisterActiveRuns(count func(context.Context) (int64, error)) (unregister func() error, err error) {
	gauge, err := m.meter.Int64ObservableGauge(MetricActiveRuns, metric.WithUnit("{run}"),
		metric.WithDescription("Runs that are active: started, not expired, not revoked."))
	if err != nil {
		return nil, err
	}
	reg, err := m.meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		n, err := count(ctx)
		if err != nil {
			return err
		}
		o.ObserveInt64(gauge, n)
		return nil
	}, gauge)
	if err != nil {
		return nil, err
	}
	return reg.Unregister, nil
}
