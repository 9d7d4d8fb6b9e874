package audit

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// pruneChunk bounds the records one pruning transaction deletes, so that
// appends wait at most for one chunk.
const pruneChunk = 5000

type pruneRequest struct {
	before time.Time
	result chan pruneResult
}

type pruneResult struct {
	n   int64
	err error
}

// Prune deletes the oldest records, up to the first record at or after
// before, and returns how many it deleted. The hash of the last deleted
// record becomes the anchor that the first kept record links to, so the
// kept chain still verifies. It checks the records it deletes and stops
// at the first one that fails, leaving the evidence in place.
func (l *Log) Prune(ctx context.Context, before time.Time) (int64, error) {
	if l.opts.readOnly {
		return 0, ErrReadOnly
	}
	req := pruneRequest{before: before, result: make(chan pruneResult, 1)}
	l.mu.RLock()
	closed := l.closed
	l.mu.RUnlock()
	if closed {
		return 0, ErrClosed
	}
	if err := l.Flush(ctx); err != nil {
		return 0, err
	}
	select {
	case l.prunes <- req:
	case <-l.done:
		return 0, ErrClosed
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	res := <-req.result
	return res.n, res.err
}

// pruneExpired applies the retention setting.
func (l *Log) pruneExpired(ctx context.Context) {
	n, err := l.w.prune(ctx, time.Now().Add(-l.opts.retention))
	if err != nil {
		l.log.Error("audit log pruning failed", "error", err)
		return
	}
	if n > 0 {
		l.log.Info("audit log pruned", "records", n, "retention", l.opts.retention)
	}
}

// prune runs on the inserter goroutine. Records still in the journal
// are newer than any it deletes.
func (w *writer) prune(ctx context.Context, before time.Time) (int64, error) {
	var first sql.NullInt64
	err := w.db.QueryRowContext(ctx, `SELECT MIN(seq) FROM records WHERE time_ns >= ?`,
		before.UnixNano()).Scan(&first)
	if err != nil {
		return 0, fmt.Errorf("audit: prune %s: %w", w.l.path, err)
	}
	cut, _ := w.head()
	if first.Valid {
		cut = uint64(first.Int64) - 1
	}
	var total int64
	for {
		w.turn.Lock()
		n, done, err := w.pruneChunk(ctx, cut)
		w.turn.Unlock()
		total += n
		if err != nil || done {
			if total > 0 {
				w.l.ckpt.request() // the deletions filled the WAL with pages
			}
			return total, err
		}
	}
}

// pruneChunk deletes up to pruneChunk records after the anchor and at or
// before cut, after checking them, and moves the anchor.
func (w *writer) pruneChunk(ctx context.Context, cut uint64) (n int64, done bool, err error) {
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, false, fmt.Errorf("audit: prune %s: %w", w.l.path, err)
	}
	defer func() { _ = tx.Rollback() }()

	c, err := readChain(ctx, tx)
	if err != nil {
		return 0, false, fmt.Errorf("audit: prune %s: %w", w.l.path, err)
	}
	if c.anchorSeq >= cut {
		return 0, true, nil
	}
	upto := min(cut, c.anchorSeq+pruneChunk)
	anchorHash, err := checkPrunable(ctx, tx, c, upto)
	if err != nil {
		return 0, false, fmt.Errorf("audit: prune %s: %w", w.l.path, err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM records WHERE seq <= ?`, upto)
	if err != nil {
		return 0, false, fmt.Errorf("audit: prune %s: %w", w.l.path, err)
	}
	_, err = tx.ExecContext(ctx, `UPDATE chain SET anchor_seq = ?, anchor_hash = ? WHERE id = 1`,
		upto, anchorHash)
	if err != nil {
		return 0, false, fmt.Errorf("audit: prune %s: %w", w.l.path, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, false, fmt.Errorf("audit: prune %s: %w", w.l.path, err)
	}
	n, _ = res.RowsAffected()
	return n, upto == cut, nil
}

// checkPrunable verifies records anchor+1 to upto and returns the hash
// of upto, the new anchor.
func checkPrunable(ctx context.Context, tx *sql.Tx, c chainState, upto uint64) (string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT seq, hash, record FROM records
		WHERE seq > ? AND seq <= ? ORDER BY seq`, c.anchorSeq, upto)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	v := newVerifier(c.anchorSeq, c.anchorHash, nil)
	for rows.Next() {
		var r storedRow
		if err := rows.Scan(&r.seq, &r.hash, &r.canon); err != nil {
			return "", err
		}
		v.check(&r, false)
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	v.finish(upto, v.prevHash)
	if _, err := v.result(); err != nil {
		return "", fmt.Errorf("stopped before deleting records that fail verification (%w); run agentauth audit verify", err)
	}
	return v.prevHash, nil
}
