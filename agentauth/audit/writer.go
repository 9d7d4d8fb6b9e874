package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"
)

// pending is one record handed to Append and waiting for its commit.
type pending struct {
	body   []byte
	cols   columns
	seq    uint64
	result chan error
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

	mu       sync.Mutex
	headSeq  uint64
	headHash string
}

func newWriter(ctx context.Context, l *Log) (*writer, error) {
	w := &writer{l: l, db: l.wdb}
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

// commit writes a batch in one transaction, so that one WAL fsync makes
// every record of the batch durable, then sends each Append its result.
func (w *writer) commit(ctx context.Context, batch []*pending) {
	start := time.Now()
	w.turn.Lock()
	seq, hash, err := w.insertBatch(ctx, batch)
	w.turn.Unlock()
	w.l.metrics.commitDuration.Record(ctx, since(start))
	if err != nil {
		err = fmt.Errorf("audit: append to %s: %w", w.l.path, err)
		w.l.setFailure(err)
		w.l.metrics.failures.Add(ctx, int64(len(batch)))
		for _, p := range batch {
			p.result <- err
		}
		if rerr := w.reload(ctx); rerr != nil {
			w.l.log.Error("audit log head could not be read after a failed write", "error", rerr)
		}
		return
	}
	w.setHead(seq, hash)
	w.l.setFailure(nil)
	w.l.metrics.appended.Add(ctx, int64(len(batch)))
	for _, p := range batch {
		p.result <- nil
	}
	w.countWrite(len(batch))
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

func (w *writer) insertBatch(ctx context.Context, batch []*pending) (uint64, string, error) {
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = tx.Rollback() }()

	insert := tx.StmtContext(ctx, w.insert)
	seq, prev := w.head()
	for _, p := range batch {
		seq++
		canon := canonical(seq, prev, p.body)
		hash := hashOf(canon)
		c := &p.cols
		_, err := insert.ExecContext(ctx, seq, c.timeNS, c.kind, c.effect,
			c.sponsorIssuer, c.sponsorSubject, c.runID, c.parentRunID,
			c.server, c.tool, hash, canon)
		if err != nil {
			return 0, "", err
		}
		p.seq, prev = seq, hash
	}
	if _, err := tx.StmtContext(ctx, w.updateHead).ExecContext(ctx, seq, prev); err != nil {
		return 0, "", err
	}
	if err := tx.Commit(); err != nil {
		return 0, "", err
	}
	return seq, prev, nil
}

// run is the writer goroutine: it batches queued records into commits
// and runs pruning between them, until Close closes the queue.
func (l *Log) run(ctx context.Context) {
	defer close(l.done)
	var tick <-chan time.Time
	if l.opts.retention > 0 {
		t := time.NewTicker(l.opts.pruneInterval)
		defer t.Stop()
		tick = t.C
		l.pruneExpired(ctx)
	}
	batch := make([]*pending, 0, l.opts.maxBatch)
	prev := 0
	for {
		select {
		case p, ok := <-l.queue:
			if !ok {
				return
			}
			batch = l.collect(append(batch[:0], p), prev)
			prev = len(batch)
			l.w.commit(ctx, batch)
			clear(batch)
		case req := <-l.prunes:
			n, err := l.w.prune(ctx, req.before)
			req.result <- pruneResult{n, err}
		case <-tick:
			l.pruneExpired(ctx)
		}
	}
}

// lingerTime is how long the writer waits for more records before a
// commit when the previous batch showed concurrent callers. A WAL fsync
// took about 2 ms on the 2-core test machine, so waiting a fraction of
// that lets more records share one fsync. A lone caller never waits.
const lingerTime = 300 * time.Microsecond

// collect adds every record already queued to batch, up to the maximum
// batch size, and lingers for more when the previous batch had several.
func (l *Log) collect(batch []*pending, prev int) []*pending {
	batch, open := l.drainQueue(batch)
	if !open || prev < 4 || len(batch) >= l.opts.maxBatch {
		return batch
	}
	timer := time.NewTimer(lingerTime)
	defer timer.Stop()
	for len(batch) < l.opts.maxBatch {
		select {
		case p, ok := <-l.queue:
			if !ok {
				return batch
			}
			batch = append(batch, p)
		case <-timer.C:
			return batch
		}
	}
	return batch
}

// drainQueue adds the records already queued without waiting, and reports
// whether the queue is still open.
func (l *Log) drainQueue(batch []*pending) ([]*pending, bool) {
	for len(batch) < l.opts.maxBatch {
		select {
		case p, ok := <-l.queue:
			if !ok {
				return batch, false
			}
			batch = append(batch, p)
		default:
			return batch, true
		}
	}
	return batch, true
}

func (l *Log) startWriter() {
	l.queue = make(chan *pending, 4*l.opts.maxBatch)
	l.prunes = make(chan pruneRequest)
	l.done = make(chan struct{})
	go l.run(context.Background())
	go l.ckpt.run(context.Background())
}
