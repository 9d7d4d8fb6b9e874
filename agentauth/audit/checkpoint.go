package audit

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// SQLite's automatic checkpoint runs inside the commit that takes the WAL
// past 1000 pages. That commit waits while the WAL is fsynced, pages are
// copied into the database file, and that file is fsynced, which took a
// few milliseconds once in about 130 commits of one record each. The writer
// connection turns it off (wal_autocheckpoint=0), and a checkpointer
// goroutine copies the WAL from a connection of its own while commits go on.
const (
	// checkpointCommits and checkpointRecords are how many commits or
	// records since the last request make the writer request a
	// checkpoint. A checkpoint that copies every frame lets the next
	// commit start the WAL over, and SQLite fsyncs the new WAL header in
	// that commit even with synchronous=NORMAL, so checkpoints are kept
	// to at most one per 256 commits.
	checkpointCommits = 256
	checkpointRecords = 2048

	// checkpointInterval is how often the checkpointer also runs without
	// a request, so that the WAL of a quiet log reaches the database file.
	checkpointInterval = 10 * time.Second

	// walLimitFrames bounds the WAL to 4096 frames, 16 MiB with 4 KiB
	// pages. A passive checkpoint lets the WAL start over only when no
	// commit follows it before it ends, which a steady stream of commits
	// prevents. Past this bound, the checkpointer pauses commits and runs
	// a RESTART checkpoint, which makes the next commit start the WAL over.
	// The WAL exceeds the bound by what commits add while the checkpoints
	// run. The bound is kept small because the file keeps its largest
	// size, and a commit that extends the file costs more than one that
	// overwrites it, above all when it is fsynced.
	walLimitFrames = 4096

	// catchUpPasses is how many more passive checkpoints run before a
	// RESTART, each copying what commits added during the one before, so
	// that the RESTART has few frames left to copy while commits wait.
	catchUpPasses = 1

	// checkpointBusyMillis is the checkpoint connection's busy timeout in
	// milliseconds. It bounds how long a RESTART or TRUNCATE checkpoint
	// waits for readers while it holds SQLite's write lock.
	checkpointBusyMillis = 10
)

// walState is the result row of PRAGMA wal_checkpoint.
type walState struct {
	busy       bool // the checkpoint could not take a lock it needed
	frames     int  // frames in the WAL
	backfilled int  // frames copied into the database file
}

// checkpointer copies the WAL into the database file from its own
// connection, on request from the writer, on a timer, and at Close.
type checkpointer struct {
	db       *sql.DB
	log      *slog.Logger
	path     string
	turn     *sync.Mutex // the writer holds it during each commit
	limit    int         // walLimitFrames, lowered by tests
	interval time.Duration

	wake chan struct{}
	stop chan struct{}
	done chan struct{}

	failing bool // only the checkpointer goroutine reads and writes it
}

func (l *Log) openCheckpointer(ctx context.Context) error {
	dsn, err := checkpointDataSourceName(l.path, l.opts.fsync)
	if err != nil {
		return err
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return fmt.Errorf("audit: open %s for checkpoints: %w", l.path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetConnMaxIdleTime(0)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return fmt.Errorf("audit: open %s for checkpoints: %w", l.path, err)
	}
	l.ckpt = &checkpointer{
		db: db, log: l.log, path: l.path, turn: &l.w.turn,
		limit: l.opts.walLimitFrames, interval: l.opts.checkpointInterval,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	return nil
}

// request wakes the checkpointer without waiting for the checkpoint.
func (c *checkpointer) request() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *checkpointer) run(ctx context.Context) {
	defer close(c.done)
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-c.wake:
		case <-t.C:
		}
		c.checkpoint(ctx)
	}
}

// checkpoint copies what it can of the WAL without waiting for the writer
// or readers. Once the WAL is over its bound, it runs catchUpPasses more
// such passes. Then it takes the writer's turn for a RESTART checkpoint,
// which has only the last few frames left to copy while commits wait.
func (c *checkpointer) checkpoint(ctx context.Context) {
	st, err := c.exec(ctx, "PASSIVE")
	for range catchUpPasses {
		if err != nil || !c.overLimit(st) {
			break
		}
		st, err = c.exec(ctx, "PASSIVE")
	}
	if err == nil && c.overLimit(st) {
		c.turn.Lock()
		st, err = c.exec(ctx, "RESTART")
		c.turn.Unlock()
		if err == nil && st.busy {
			c.log.Debug("audit log WAL restart waits for readers", "wal_frames", st.frames)
		}
	}
	c.report(err)
}

// overLimit reports whether the WAL is over its bound and a checkpoint
// copied all of it. When a reader held a checkpoint back, a RESTART would
// wait for the same reader, so none is tried then.
func (c *checkpointer) overLimit(st walState) bool {
	return st.frames >= c.limit && st.backfilled == st.frames
}

func (c *checkpointer) exec(ctx context.Context, mode string) (walState, error) {
	var st walState
	var busy int
	err := c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint("+mode+")").
		Scan(&busy, &st.frames, &st.backfilled)
	if err != nil {
		return st, fmt.Errorf("audit: %s checkpoint of %s: %w", mode, c.path, err)
	}
	st.busy = busy != 0
	return st, nil
}

// report logs the first failed checkpoint and the first success after
// failures, not every attempt.
func (c *checkpointer) report(err error) {
	switch {
	case err != nil && !c.failing:
		c.failing = true
		c.log.Error("audit log checkpoint failed; the WAL grows until a checkpoint succeeds", "error", err)
	case err == nil && c.failing:
		c.failing = false
		c.log.Info("audit log checkpoints succeed again")
	}
}

// finish stops the checkpointer goroutine and, once the writer has
// stopped, copies the whole WAL and truncates it to zero bytes. A reader
// that stays in a transaction for longer than the busy timeout keeps the
// WAL from being truncated. That is logged, not returned, because the
// records are committed either way.
func (c *checkpointer) finish(ctx context.Context) {
	close(c.stop)
	<-c.done
	st, err := c.exec(ctx, "TRUNCATE")
	switch {
	case err != nil:
		c.log.Error("audit log final checkpoint failed", "error", err)
	case st.busy:
		c.log.Info("audit log WAL not truncated at close: a reader is in a transaction", "wal_frames", st.frames)
	}
}
