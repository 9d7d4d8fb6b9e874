package traces

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// ScopeName is the instrumentation scope of agentauth's spans and metrics.
const ScopeName = "github.com/agentauth/agentauth"

// Telemetry holds the tracer and meter providers of one process and the
// Prometheus registry its metrics are exposed from.
type Telemetry struct {
	tracerProvider trace.TracerProvider
	meterProvider  metric.MeterProvider
	registry       *prometheus.Registry
	queue          *spanQueue // nil when spans are not exported
	metrics        *Metrics
	errors         *errorLog
	shutdowns      []func(context.Context) error
}

// Option configures New.
type Option func(*settings)

type settings struct {
	exporter sdktrace.SpanExporter
}

// WithSpanExporter exports spans to exp instead of the exporter the
// environment selects, and turns tracing on. Tests and benchmarks use it.
func WithSpanExporter(exp sdktrace.SpanExporter) Option {
	return func(s *settings) { s.exporter = exp }
}

// New creates the providers from the standard OTEL_* environment
// variables. Spans are exported only when OTEL_TRACES_EXPORTER is otlp,
// or unset with an OTLP endpoint set (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT); OTEL_EXPORTER_OTLP_PROTOCOL picks
// grpc or http/protobuf (the default). OTEL_SDK_DISABLED=true turns both
// traces and metrics off. Metrics are always exposed for Prometheus
// through MetricsHandler. The exporter reads its own settings (endpoint,
// headers, TLS, timeout) from the environment too. New does not connect
// anywhere: an unreachable collector shows as dropped spans and logged
// export errors, never as a blocked or failed call.
func New(ctx context.Context, serviceName string, logger *slog.Logger, opts ...Option) (*Telemetry, error) {
	var s settings
	for _, opt := range opts {
		opt(&s)
	}
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	t := &Telemetry{registry: newRegistry(), errors: &errorLog{logger: logger}}
	if envBool("OTEL_SDK_DISABLED") {
		return t.disabled()
	}

	res, err := newResource(ctx, serviceName)
	if err != nil {
		logger.Warn("telemetry resource is incomplete", "error", err)
	}
	if err := t.setupTraces(ctx, res, s.exporter); err != nil {
		return nil, err
	}
	if err := t.setupMetrics(res); err != nil {
		_ = t.Shutdown(ctx)
		return nil, err
	}
	return t, nil
}

func (t *Telemetry) disabled() (*Telemetry, error) {
	t.tracerProvider = tracenoop.NewTracerProvider()
	t.meterProvider = metricnoop.NewMeterProvider()
	m, err := newMetrics(t.meterProvider.Meter(ScopeName), nil)
	t.metrics = m
	return t, err
}

func (t *Telemetry) setupTraces(ctx context.Context, res *resource.Resource, exp sdktrace.SpanExporter) error {
	if exp == nil {
		var err error
		if exp, err = spanExporterFromEnv(ctx); err != nil {
			return err
		}
	}
	if exp == nil {
		t.tracerProvider = tracenoop.NewTracerProvider()
		return nil
	}
	cfg, err := queueConfigFromEnv()
	if err != nil {
		return err
	}
	t.queue = newSpanQueue(exp, cfg, t.errors.handle)
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSpanProcessor(t.queue))
	t.tracerProvider = tp
	t.shutdowns = append(t.shutdowns, tp.Shutdown)
	return nil
}

func (t *Telemetry) setupMetrics(res *resource.Resource) error {
	reader, err := otelprom.New(otelprom.WithRegisterer(t.registry))
	if err != nil {
		return fmt.Errorf("traces: create prometheus exporter: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(reader))
	t.meterProvider = mp
	t.shutdowns = append(t.shutdowns, mp.Shutdown)
	t.metrics, err = newMetrics(mp.Meter(ScopeName), t.queue)
	if err != nil {
		return fmt.Errorf("traces: create instruments: %w", err)
	}
	return nil
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

func newResource(ctx context.Context, serviceName string) (*resource.Resource, error) {
	attrs := []attribute.KeyValue{attribute.String("service.name", serviceName)}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		attrs = append(attrs, attribute.String("service.version", bi.Main.Version))
	}
	// Later options win, so OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
	// override the name given here.
	return resource.New(ctx, resource.WithAttributes(attrs...),
		resource.WithTelemetrySDK(), resource.WithFromEnv())
}

// spanExporterFromEnv returns the OTLP exporter the environment selects,
// or nil when spans are not to be exported.
func spanExporterFromEnv(ctx context.Context) (sdktrace.SpanExporter, error) {
	names := strings.TrimSpace(os.Getenv("OTEL_TRACES_EXPORTER"))
	endpoint := firstEnv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
	switch {
	case names == "" && endpoint == "", names == "none":
		return nil, nil
	case names != "" && names != "otlp":
		return nil, fmt.Errorf("traces: OTEL_TRACES_EXPORTER=%q is not supported; set it to otlp or none", names)
	}

	protocol := firstEnv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch protocol {
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	case "", "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	default:
		return nil, fmt.Errorf("traces: OTLP protocol %q is not supported; set OTEL_EXPORTER_OTLP_PROTOCOL to grpc or http/protobuf", protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("traces: create OTLP %s exporter: %w", protocol, err)
	}
	return exp, nil
}

func queueConfigFromEnv() (queueConfig, error) {
	cfg := defaultQueueConfig()
	var errs []error
	readInt := func(name string, dst *int) {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				errs = append(errs, fmt.Errorf("traces: %s=%q is not a positive integer", name, v))
				return
			}
			*dst = n
		}
	}
	delay, timeout := int(cfg.scheduleDelay/time.Millisecond), int(cfg.exportTimeout/time.Millisecond)
	readInt("OTEL_BSP_MAX_QUEUE_SIZE", &cfg.maxQueue)
	readInt("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", &cfg.maxBatch)
	readInt("OTEL_BSP_SCHEDULE_DELAY", &delay)
	readInt("OTEL_BSP_EXPORT_TIMEOUT", &timeout)
	cfg.scheduleDelay = time.Duration(delay) * time.Millisecond
	cfg.exportTimeout = time.Duration(timeout) * time.Millisecond
	cfg.maxBatch = min(cfg.maxBatch, cfg.maxQueue)
	return cfg, errors.Join(errs...)
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := strings.TrimSpace(os.Getenv(n)); v != "" {
			return v
		}
	}
	return ""
}

func envBool(name string) bool {
	return strings.EqualFold(strings.TrimSpace(os.Getenv(name)), "true")
}

// TracerProvider returns the tracer provider: a no-op one when spans are
// not exported.
func (t *Telemetry) TracerProvider() trace.TracerProvider { return t.tracerProvider }

// MeterProvider returns the meter provider.
func (t *Telemetry) MeterProvider() metric.MeterProvider { return t.meterProvider }

// Tracer returns agentauth's tracer.
func (t *Telemetry) Tracer() trace.Tracer { return t.tracerProvider.Tracer(ScopeName) }

// Meter returns agentauth's meter.
func (t *Telemetry) Meter() metric.Meter { return t.meterProvider.Meter(ScopeName) }

// Metrics returns the gateway's instruments.
func (t *Telemetry) Metrics() *Metrics { return t.metrics }

// Exporting reports whether spans are exported.
func (t *Telemetry) Exporting() bool { return t.queue != nil }

// DroppedSpans returns the spans lost so far because the export queue was
// full and because their export failed.
func (t *Telemetry) DroppedSpans() (queueFull, exportFailed int64) {
	if t.queue == nil {
		return 0, 0
	}
	return t.queue.Dropped()
}

// MetricsHandler returns the Prometheus exposition handler for the admin
// listener. It serves the Go runtime and process collectors and every
// OpenTelemetry metric of the process from a private registry.
func (t *Telemetry) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{Registry: t.registry})
}

// ForceFlush exports every span ended so far.
func (t *Telemetry) ForceFlush(ctx context.Context) error {
	if t.queue == nil {
		return nil
	}
	return t.queue.ForceFlush(ctx)
}

// Shutdown flushes queued spans and stops the providers. Spans that
// cannot be exported before ctx ends are lost and counted as dropped.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	for _, s := range t.shutdowns {
		errs = append(errs, s(ctx))
	}
	t.shutdowns = nil
	return errors.Join(errs...)
}

// errorLog logs telemetry errors that cannot be returned, such as failed
// exports, at most once every errorLogInterval, with the number of
// errors left out since the last line.
type errorLog struct {
	logger     *slog.Logger
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

const errorLogInterval = 30 * time.Second

func (e *errorLog) handle(err error) {
	if e.logger == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if now := time.Now(); now.Sub(e.last) < errorLogInterval {
		e.suppressed++
		return
	}
	e.logger.Warn("telemetry export failed; spans are dropped until the collector is reachable",
		"error", err, "suppressed", e.suppressed)
	e.last, e.suppressed = time.Now(), 0
}

// Handle implements otel.ErrorHandler.
func (e *errorLog) Handle(err error) { e.handle(err) }

var (
	installed       atomic.Pointer[Telemetry]
	disabledDefault = sync.OnceValue(func() *Telemetry {
		t, _ := (&Telemetry{registry: newRegistry(), errors: &errorLog{}}).disabled()
		return t
	})
)

// Setup creates the process's telemetry with New and installs it as the
// OpenTelemetry global tracer provider, meter provider, propagator and
// error handler. The returned function flushes and stops it; call it on
// shutdown.
func Setup(ctx context.Context, serviceName string, logger *slog.Logger) (shutdown func(context.Context) error, err error) {
	t, err := New(ctx, serviceName, logger)
	if err != nil {
		return nil, err
	}
	otel.SetTracerProvider(t.tracerProvider)
	otel.SetMeterProvider(t.meterProvider)
	otel.SetTextMapPropagator(Propagator)
	otel.SetErrorHandler(t.errors)
	installed.Store(t)
	return t.Shutdown, nil
}

// Default returns the telemetry Setup installed, or a disabled one before
// Setup.
func Default() *Telemetry {
	if t := installed.Load(); t != nil {
		return t
	}
	return disabledDefault()
}

// Tracer returns agentauth's tracer from the global tracer provider.
func Tracer() trace.Tracer { return otel.Tracer(ScopeName) }

// Meter returns agentauth's meter from the global meter provider.
func Meter() metric.Meter { return otel.Meter(ScopeName) }

// MetricsHandler returns the Prometheus handler of Default.
func MetricsHandler() http.Handler { return Default().MetricsHandler() }

// Instruments returns the instruments of Default.
func Instruments() *Metrics { return Default().Metrics() }
