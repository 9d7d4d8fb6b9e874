package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"
)

// pending is one record handed to Append. The journal fills in seq,
// hash and canon when it writes the record.
type pending struct {
	body  []byte
	cols  columns
	seq   uint64
	hash  string
	canon []byte
}

// columns are the query columns stored beside a record's encoding.
type columns struct {
	timeNS                        int64
	kind, effect                  string
	sponsorIssuer, sponsorSubject string
	runID, parentRunID            string
	server, tool                  string
}

func columnsOf(r *Record) columns {
	return columns{
		timeNS: r.Time.UnixNano(), kind: string(r.Kind), effect: string(r.Effect),
		sponsorIssuer: r.SponsorIssuer, sponsorSubject: r.SponsorSubject,
		runID: r.RunID, parentRunID: r.ParentRunID, server: r.Server, tool: r.Tool,
	}
}

// writer owns the write connection. Only the writer goroutine calls its
// commit and prune methods; head may be read from any goroutine.
type writer struct {
	l          *Log
	db         *sql.DB
	insert     *sql.Stmt
	updateHead *sql.Stmt

	// turn is held by the writer goroutine while it writes, and by the
	// checkpointer during a RESTART checkpoint. A commit then waits on
	// turn, not in SQLite's busy handler, which sleeps for 1 ms or more.
	turn sync.Mutex

	// Writes since the last checkpoint request; writer goroutine only.
	commitsSince, recordsSince int

	// mu guards the head of SQLite, the queue of journaled records not
	// yet inserted, and the outcome of the last insert.
	mu       sync.Mutex
	headSeq  uint64
	headHash string
	queue    []*pending
	attempts uint64        // inserts tried, successful or not
	lastErr  error         // error of the last insert, nil after a success
	changed  chan struct{} // closed and replaced after every insert
	wake     chan struct{} // signals the inserter that queue grew
}

func newWriter(ctx context.Context, l *Log) (*writer, error) {
	w := &writer{l: l, db: l.wdb, changed: make(chan struct{}), wake: make(chan struct{}, 1)}
	var err error
	if w.insert, err = w.db.PrepareContext(ctx, insertRecordSQL); err != nil {
		return nil, fmt.Errorf("audit: prepare insert on %s: %w", l.path, err)
	}
	if w.updateHead, err = w.db.PrepareContext(ctx, updateHeadSQL); err != nil {
		_ = w.insert.Close()
		return nil, fmt.Errorf("audit: prepare head update on %s: %w", l.path, err)
	}
	if err := w.reload(ctx); err != nil {
		_ = w.close()
		return nil, fmt.Errorf("audit: read head of %s: %w", l.path, err)
	}
	return w, nil
}

// reload sets the in-memory head from the file. When the chain row and
// the newest record disagree, someone edited the file: the writer goes on
// after whichever is newer, so that appends never reuse a sequence
// number, and Verify reports the damage.
func (w *writer) reload(ctx context.Context) error {
	c, err := readChain(ctx, w.db)
	if err != nil {
		return err
	}
	seq, hash, ok, err := lastRecord(ctx, w.db)
	if err != nil {
		return err
	}
	switch {
	case ok && seq > c.headSeq:
		w.l.log.Error("audit log holds records after its recorded head; run agentauth audit verify",
			"head_seq", c.headSeq, "last_seq", seq)
		c.headSeq, c.headHash = seq, hash
	case ok && seq < c.headSeq, !ok && c.headSeq > c.anchorSeq:
		w.l.log.Error("audit log is missing records before its recorded head; run agentauth audit verify",
			"head_seq", c.headSeq, "last_seq", seq)
	case ok && hash != c.headHash:
		w.l.log.Error("audit log's newest record does not match its recorded head; run agentauth audit verify",
			"head_seq", c.headSeq)
	}
	w.setHead(c.headSeq, c.headHash)
	return nil
}

func (w *writer) head() (uint64, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.headSeq, w.headHash
}

func (w *writer) setHead(seq uint64, hash string) {
	w.mu.Lock()
	w.headSeq, w.headHash = seq, hash
	w.mu.Unlock()
}

func (w *writer) close() error {
	return errors.Join(w.insert.Close(), w.updateHead.Close())
}

// push queues a journaled record for insertion. The journal calls it
// in sequence order.
func (w *writer) push(p *pending) {
	w.mu.Lock()
	w.queue = append(w.queue, p)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// next returns up to n queued records, oldest first, without removing
// them: they leave the queue only once they are in SQLite.
func (w *writer) next(n int) []*pending {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*pending(nil), w.queue[:min(n, len(w.queue))]...)
}

// applied reports whether record seq is in SQLite.
func (w *writer) applied(seq uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.headSeq >= seq
}

// wait returns once record seq is in SQLite, or with the error of an
// insert tried after wait was called that failed.
func (w *writer) wait(ctx context.Context, seq uint64) error {
	w.mu.Lock()
	start := w.attempts
	for w.headSeq < seq {
		if w.attempts > start && w.lastErr != nil {
			err := w.lastErr
			w.mu.Unlock()
			return err
		}
		changed := w.changed
		w.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
		w.mu.Lock()
	}
	w.mu.Unlock()
	return nil
}

// finishInsert records the outcome of inserting batch and wakes waiters.
func (w *writer) finishInsert(batch []*pending, err error) {
	w.mu.Lock()
	w.attempts++
	w.lastErr = err
	if err == nil {
		last := batch[len(batch)-1]
		w.headSeq, w.headHash = last.seq, last.hash
		clear(w.queue[:len(batch)])
		w.queue = w.queue[len(batch):]
	}
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
}

// commit inserts a batch of journaled records in one transaction.
func (w *writer) commit(ctx context.Context, batch []*pending) error {
	start := time.Now()
	w.turn.Lock()
	err := w.insertBatch(ctx, batch)
	w.turn.Unlock()
	w.l.metrics.commitDuration.Record(ctx, since(start))
	// Err changes before waiters wake, so that an Append that returns
	// reads Err as of its own insert.
	if err != nil {
		err = fmt.Errorf("audit: append to %s: %w", w.l.path, err)
		w.l.setFailure(err)
		w.finishInsert(batch, err)
		return err
	}
	w.l.setFailure(nil)
	w.finishInsert(batch, nil)
	w.l.metrics.appended.Add(ctx, int64(len(batch)))
	w.countWrite(len(batch))
	return nil
}

// countWrite requests a checkpoint once enough commits or records have
// gone into the WAL since the last request.
func (w *writer) countWrite(records int) {
	w.commitsSince++
	w.recordsSince += records
	o := &w.l.opts
	if w.commitsSince < o.checkpointCommits && w.recordsSince < o.checkpointRecords {
		return
	}
	w.commitsSince, w.recordsSince = 0, 0
	w.l.ckpt.request()
}

// insertBatch inserts records exactly as the journal numbered and hashed
// them. The first must follow the head of SQLite.
func (w *writer) insertBatch(ctx context.Context, batch []*pending) error {
	seq, hash := w.head()
	if first := batch[0]; first.seq != seq+1 {
		return fmt.Errorf("record seq %d does not follow the head seq %d of the database; %w", first.seq, seq, errJournalGap)
	}
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()

	insert := tx.StmtContext(ctx, w.insert)
	for _, p := range batch {
		c := &p.cols
		_, err := insert.ExecContext(ctx, p.seq, c.timeNS, c.kind, c.effect,
			c.sponsorIssuer, c.sponsorSubject, c.runID, c.parentRunID,
			c.server, c.tool, p.hash, p.canon)
		if err != nil {
			return err
		}
		seq, hash = p.seq, p.hash
	}
	if _, err := tx.StmtContext(ctx, w.updateHead).ExecContext(ctx, seq, hash); err != nil {
		return err
	}
	return tx.Commit()
}

// insertDelay is how long the inserter lets records gather before it
// starts a transaction, so that one transaction holds several records
// under a steady stream of calls. Fewer, larger transactions take less
// CPU from the calls on the same cores.
const insertDelay = time.Millisecond

// retryDelays are the waits before retrying a failed insert while no new
// record arrives; the last one repeats.
var retryDelays = []time.Duration{10 * time.Millisecond, 100 * time.Millisecond, time.Second}

// run is the inserter goroutine: it inserts journaled records into
// SQLite in batches and runs pruning between them, until stop is closed,
// then inserts what is left.
func (l *Log) run(ctx context.Context) {
	defer close(l.done)
	var tick <-chan time.Time
	if l.opts.retention > 0 {
		t := time.NewTicker(l.opts.pruneInterval)
		defer t.Stop()
		tick = t.C
		l.pruneExpired(ctx)
	}
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	failures := 0
	for {
		select {
		case <-l.w.wake:
		case <-retry.C:
		case <-l.stop:
			if err := l.insertQueued(ctx); err != nil {
				l.log.Error("audit records stay in the journal until the next Open", "error", err)
			}
			return
		case req := <-l.prunes:
			n, err := l.w.prune(ctx, req.before)
			req.result <- pruneResult{n, err}
			continue
		case <-tick:
			l.pruneExpired(ctx)
			continue
		}
		if l.opts.pauseInserter {
			continue
		}
		time.Sleep(insertDelay)
		if err := l.insertQueued(ctx); err != nil {
			retry.Reset(retryDelays[min(failures, len(retryDelays)-1)])
			failures++
			continue
		}
		failures = 0
	}
}

// insertQueued inserts every queued record, then truncates the journal
// once it is over its size limit and all its records are in SQLite.
func (l *Log) insertQueued(ctx context.Context) error {
	for {
		batch := l.w.next(l.opts.maxBatch)
		if len(batch) == 0 {
			break
		}
		if err := l.w.commit(ctx, batch); err != nil {
			return err
		}
	}
	if err := l.j.truncateIf(l.opts.journalRotateBytes, l.w.applied); err != nil {
		l.log.Error("audit journal could not be truncated", "error", err)
	}
	return nil
}

func (l *Log) startWriter() {
	l.prunes = make(chan pruneRequest)
	l.stop = make(chan struct{})
	l.done = make(chan struct{})
	go l.run(context.Background())
	go l.ckpt.run(context.Background())
}
