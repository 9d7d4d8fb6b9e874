package audit

import (
	"io"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/agentauth/agentauth/agentauth/config"
)

// Option configures Open.
type Option func(*options)

type options struct {
	logger          *slog.Logger
	meterProvider   metric.MeterProvider
	recordArguments bool
	redact          []string
	retention       time.Duration
	pruneInterval   time.Duration
	maxBatch        int
	readOnly        bool
	fsync           bool

	// journalRotateBytes is the journal size past which it is truncated
	// once all its records are in SQLite. pauseInserter keeps records in
	// the journal only, as a crash before their insert would. Only tests
	// change them.
	journalRotateBytes int64
	pauseInserter      bool

	// Checkpoint thresholds; see checkpoint.go. Only tests change them.
	checkpointCommits  int
	checkpointRecords  int
	checkpointInterval time.Duration
	walLimitFrames     int
}

func defaultOptions() options {
	return options{
		logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		meterProvider: noop.NewMeterProvider(),
		pruneInterval: time.Hour,
		maxBatch:      1024,
		fsync:         true,

		journalRotateBytes: journalRotateBytes,

		checkpointCommits:  checkpointCommits,
		checkpointRecords:  checkpointRecords,
		checkpointInterval: checkpointInterval,
		walLimitFrames:     walLimitFrames,
	}
}

// WithFsync sets whether Append waits for an fdatasync of the journal
// after writing its record (the default of Open), and whether SQLite
// commits with synchronous=FULL or NORMAL. Without fsync an appended
// record still survives the process being killed, because the operating
// system has the write. An operating-system crash or power loss can lose
// the last records, but cannot corrupt the chain.
func WithFsync(on bool) Option {
	return func(o *options) { o.fsync = on }
}

// WithLogger sends the log's own messages (write failures, recovery,
// pruning) to logger. The default discards them.
func WithLogger(logger *slog.Logger) Option {
	return func(o *options) {
		if logger != nil {
			o.logger = logger
		}
	}
}

// WithMeterProvider records the log's metrics with mp: records appended,
// append failures, commit latency and a health gauge.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *options) {
		if mp != nil {
			o.meterProvider = mp
		}
	}
}

// WithRecordArguments keeps the arguments of calls in records, with the
// value of every member named in redact replaced at any depth. Without
// it, records hold only the arguments' digest.
func WithRecordArguments(redact ...string) Option {
	return func(o *options) {
		o.recordArguments = true
		o.redact = append([]string(nil), redact...)
	}
}

// WithRetention prunes records older than d, checking every interval.
// Zero d keeps every record.
func WithRetention(d, interval time.Duration) Option {
	return func(o *options) {
		o.retention = d
		if interval > 0 {
			o.pruneInterval = interval
		}
	}
}

// WithConfig applies the audit section of the gateway configuration:
// argument recording, redaction and retention.
func WithConfig(c config.Audit) Option {
	return func(o *options) {
		if c.RecordArguments {
			WithRecordArguments(c.Redact...)(o)
		}
		WithRetention(c.Retention, 0)(o)
		WithFsync(c.Sync != "normal")(o)
	}
}

// WithMaxBatch bounds how many records one commit holds. The default is
// 1024.
func WithMaxBatch(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.maxBatch = n
		}
	}
}

// ReadOnly opens an existing log for queries and verification only, as
// the CLI does while the gateway writes to it. Append then fails. When no
// process holds the log for writing and its journal is not empty, as
// after the writer was killed, Open first inserts the journal's records
// into SQLite, which needs write access to the files.
func ReadOnly() Option {
	return func(o *options) { o.readOnly = true }
}
