package audit

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/metric"
)

// ScopeName is the instrumentation scope of the log's metrics.
const ScopeName = "github.com/agentauth/agentauth/agentauth/audit"

// Metric names.
const (
	MetricRecords        = "agentauth.audit.records"
	MetricFailures       = "agentauth.audit.failures"
	MetricCommitDuration = "agentauth.audit.commit.duration"
	MetricHealthy        = "agentauth.audit.healthy"
)

type metrics struct {
	appended       metric.Int64Counter
	failures       metric.Int64Counter
	commitDuration metric.Float64Histogram
	registration   metric.Registration
}

func newMetrics(mp metric.MeterProvider, l *Log) (*metrics, error) {
	meter := mp.Meter(ScopeName)
	var m metrics
	var errs [4]error
	m.appended, errs[0] = meter.Int64Counter(MetricRecords, metric.WithUnit("{record}"),
		metric.WithDescription("Records inserted into the audit log's SQLite file."))
	m.failures, errs[1] = meter.Int64Counter(MetricFailures, metric.WithUnit("{record}"),
		metric.WithDescription("Records whose append failed; each failure denied a call."))
	m.commitDuration, errs[2] = meter.Float64Histogram(MetricCommitDuration, metric.WithUnit("s"),
		metric.WithDescription("Time to insert one batch of journaled records into SQLite and commit it."),
		metric.WithExplicitBucketBoundaries(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1))
	healthy, err := meter.Int64ObservableGauge(MetricHealthy,
		metric.WithDescription("1 while appends succeed, 0 after a failed write until one succeeds."))
	errs[3] = err
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	m.registration, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		v := int64(1)
		if l.Err() != nil {
			v = 0
		}
		o.ObserveInt64(healthy, v)
		return nil
	}, healthy)
	if err != nil {
		return nil, err
	}
	return &m, nil
}

func (m *metrics) unregister() {
	if m != nil && m.registration != nil {
		_ = m.registration.Unregister()
	}
}
