package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// FileName is the name of the log file in the state directory.
const FileName = "audit.db"

// PathIn returns the path of the log file in a state directory.
func PathIn(stateDir string) string { return filepath.Join(stateDir, FileName) }

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("audit: log is closed")

// ErrReadOnly is returned by Append and Prune on a log opened ReadOnly.
var ErrReadOnly = errors.New("audit: log is opened read-only")

// Log is an append-only, hash-chained audit log stored in one SQLite
// file. Its methods are safe for concurrent use.
type Log struct {
	path string
	opts options
	log  *slog.Logger

	lock *os.File // held with an exclusive flock while the log is open for writing
	wdb  *sql.DB  // the single writer connection; nil when read-only
	rdb  *sql.DB  // query-only connections

	// mu guards closed against Appends still writing to the journal.
	mu     sync.RWMutex
	closed bool
	prunes chan pruneRequest
	stop   chan struct{} // closed by Close to stop the inserter
	done   chan struct{} // closed when the inserter goroutine returns

	j              *journal // nil when read-only
	w              *writer
	ckpt           *checkpointer         // nil when read-only
	failure        atomic.Pointer[error] // last failed insert into SQLite
	journalFailure atomic.Pointer[error] // last failed journal write
	metrics        *metrics
}

// Open opens the log at path, creating the file (mode 0600) and its
// folder when missing, unless ReadOnly is given.
func Open(path string, opts ...Option) (*Log, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	l := &Log{path: path, opts: o, log: o.logger.With("audit_log", path)}

	if err := l.openFiles(context.Background()); err != nil {
		l.closeDBs()
		return nil, err
	}
	m, err := newMetrics(o.meterProvider, l)
	if err != nil {
		l.closeDBs()
		return nil, err
	}
	l.metrics = m
	if !o.readOnly {
		l.startWriter()
	}
	return l, nil
}

func (l *Log) openFiles(ctx context.Context) error {
	if l.opts.readOnly {
		if _, err := os.Stat(l.path); err != nil {
			return fmt.Errorf("audit: no audit log at %s: %w; start the gateway once or set --state-dir", l.path, err)
		}
		if err := recoverJournal(l.path, l.opts.logger); err != nil {
			return err
		}
	} else {
		if err := createFile(l.path); err != nil {
			return err
		}
		lock, err := lockWriter(l.path + ".lock")
		if err != nil {
			return err
		}
		l.lock = lock
	}

	rdsn, err := dataSourceName(l.path, true, false)
	if err != nil {
		return err
	}
	if l.rdb, err = sql.Open("sqlite", rdsn); err != nil {
		return fmt.Errorf("audit: open %s: %w", l.path, err)
	}
	l.rdb.SetMaxOpenConns(4)
	if l.opts.readOnly {
		if _, err := readChain(ctx, l.rdb); err != nil {
			return fmt.Errorf("audit: open %s: %w", l.path, err)
		}
		return nil
	}
	return l.openWriter(ctx)
}

func (l *Log) openWriter(ctx context.Context) error {
	// The journal makes appends durable, so SQLite commits need no fsync:
	// the journal is truncated only after syncDatabase.
	wdsn, err := dataSourceName(l.path, false, false)
	if err != nil {
		return err
	}
	if l.wdb, err = sql.Open("sqlite", wdsn); err != nil {
		return fmt.Errorf("audit: open %s: %w", l.path, err)
	}
	l.wdb.SetMaxOpenConns(1)
	l.wdb.SetConnMaxIdleTime(0)
	if err := createSchema(ctx, l.wdb); err != nil {
		return fmt.Errorf("audit: initialize %s: %w", l.path, err)
	}
	if l.w, err = newWriter(ctx, l); err != nil {
		return err
	}
	if err := l.openCheckpointer(ctx); err != nil {
		return err
	}
	return l.replayJournal(ctx)
}

// createFile creates the log file with mode 0600 and its folder with mode
// 0700, so that SQLite's WAL and shared-memory files inherit the mode.
func createFile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("audit: create folder for %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit: create %s: %w", path, err)
	}
	return f.Close()
}

// Path returns the file the log is stored in.
func (l *Log) Path() string { return l.path }

// Err returns the error of the last failed write to the journal or to
// SQLite, or nil once later writes of that kind have succeeded. A non-nil
// value means Append is failing and the gateway denies calls; readiness
// checks use it.
func (l *Log) Err() error {
	if p := l.journalFailure.Load(); p != nil {
		return *p
	}
	if p := l.failure.Load(); p != nil {
		return *p
	}
	return nil
}

// Close stops accepting records, commits those already handed to Append,
// and closes the file. It logs the final head (sequence number and hash),
// which an operator can keep outside the host as a checkpoint for Verify.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	if l.stop != nil {
		close(l.stop)
	}
	l.mu.Unlock()

	if l.done != nil {
		<-l.done
		l.ckpt.finish(context.Background())
		if err := l.j.truncateIf(0, l.w.applied); err != nil {
			l.log.Error("audit journal could not be truncated", "error", err)
		}
		seq, hash := l.j.head()
		l.log.Info("audit log closed", "head_seq", seq, "head_hash", hash)
	}
	l.metrics.unregister()
	return l.closeDBs()
}

func (l *Log) closeDBs() error {
	var errs []error
	if l.j != nil {
		errs = append(errs, l.j.close())
	}
	if l.w != nil {
		errs = append(errs, l.w.close())
	}
	if l.ckpt != nil {
		errs = append(errs, l.ckpt.db.Close())
	}
	for _, db := range []*sql.DB{l.wdb, l.rdb} {
		if db != nil {
			errs = append(errs, db.Close())
		}
	}
	if l.lock != nil {
		errs = append(errs, l.lock.Close()) // closing releases the flock
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("audit: close %s: %w", l.path, err)
	}
	return nil
}

// errLocked is wrapped by the error of Open when another process holds
// the log open for writing.
var errLocked = errors.New("audit log is locked by another writer")

// lockWriter takes an exclusive, non-blocking flock on path, so that a
// second process cannot open the same log for writing. Two writers would
// each number records from their own head and fail each other's appends.
func lockWriter(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: create lock file %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: %s is locked by another process that writes the audit log; "+
			"stop it, or open the log read-only: %w (%w)", path, err, errLocked)
	}
	// A lock file deleted and created again while a writer runs would let
	// a second writer in: the lock must be on the file the path names now.
	locked, err1 := f.Stat()
	named, err2 := os.Stat(path)
	if err1 != nil || err2 != nil || !os.SameFile(locked, named) {
		f.Close()
		return nil, fmt.Errorf("audit: lock file %s was replaced while it was being locked; "+
			"another writer may be running: %w", path, errLocked)
	}
	return f, nil
}

// setFailure records a write failure, or clears it when err is nil, and
// logs the change of state once rather than on every failed batch.
func (l *Log) setFailure(err error) {
	if err == nil {
		if old := l.failure.Swap(nil); old != nil {
			l.log.Info("audit log writes succeed again")
		}
		return
	}
	if old := l.failure.Swap(&err); old == nil {
		l.log.Error("audit log write failed; calls are denied until it recovers", "error", err)
	}
}

// setJournalFailure is setFailure for journal writes.
func (l *Log) setJournalFailure(err error) {
	if err == nil {
		if l.journalFailure.Load() != nil && l.journalFailure.Swap(nil) != nil {
			l.log.Info("audit journal writes succeed again")
		}
		return
	}
	if old := l.journalFailure.Swap(&err); old == nil {
		l.log.Error("audit journal write failed; calls are denied until it recovers", "error", err)
	}
}

// Head returns the sequence number and hash of the last appended record,
// or 0 and the anchor hash when there is none. On a log opened for
// writing, that record may not be in SQLite yet.
func (l *Log) Head(ctx context.Context) (seq uint64, hash string, err error) {
	if l.j != nil {
		seq, hash = l.j.head()
		return seq, hash, nil
	}
	c, err := readChain(ctx, l.rdb)
	if err != nil {
		return 0, "", fmt.Errorf("audit: read head of %s: %w", l.path, err)
	}
	return c.headSeq, c.headHash, nil
}

func since(start time.Time) float64 { return time.Since(start).Seconds() }
