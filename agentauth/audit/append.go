package audit

import (
	"context"
	"fmt"
	"time"
)

// Append adds rec to the log and returns its sequence number once the
// transaction holding the record is committed: written to the WAL, and
// fsynced unless the log was opened WithFsync(false). Concurrent Appends
// share one commit. An error means the record may not be stored; the
// gateway then denies the call.
//
// When ctx ends while the record waits for its commit, Append returns
// the context's error, and the record may still be committed.
func (l *Log) Append(ctx context.Context, rec Record) (uint64, error) {
	if l.opts.readOnly {
		return 0, ErrReadOnly
	}
	p, err := l.prepare(&rec)
	if err != nil {
		return 0, err
	}
	if err := l.enqueue(ctx, p); err != nil {
		return 0, err
	}
	select {
	case err := <-p.result:
		if err != nil {
			return 0, err
		}
		return p.seq, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("audit: append canceled before its commit: %w", ctx.Err())
	}
}

func (l *Log) enqueue(ctx context.Context, p *pending) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return ErrClosed
	}
	select {
	case l.queue <- p:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("audit: append canceled while the queue was full: %w", ctx.Err())
	}
}

// prepare completes rec and encodes it in the caller's goroutine.
func (l *Log) prepare(rec *Record) (*pending, error) {
	if !rec.Kind.Valid() {
		return nil, fmt.Errorf("audit: record kind %q is unknown; use one of the Kind constants", rec.Kind)
	}
	if rec.Time.IsZero() {
		rec.Time = time.Now()
	}
	rec.Time = rec.Time.UTC()
	rec.Seq, rec.PrevHash, rec.Hash = 0, "", ""
	fillRunIDs(rec)
	l.prepareArguments(rec)

	b, err := encodeBody(rec)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxRecordSize-200 {
		return nil, fmt.Errorf("audit: record of %d bytes is over the limit of %d; shorten its message", len(b), MaxRecordSize-200)
	}
	return &pending{body: b, cols: columnsOf(rec), result: make(chan error, 1)}, nil
}

// fillRunIDs derives the run, parent run and root run from the chain
// where the caller left them empty.
func fillRunIDs(rec *Record) {
	var runs []string
	for _, h := range rec.Chain {
		if h.RunID != "" {
			runs = append(runs, h.RunID)
		}
	}
	if len(runs) == 0 {
		return
	}
	if rec.RunID == "" {
		rec.RunID = runs[len(runs)-1]
	}
	if rec.RootRunID == "" {
		rec.RootRunID = runs[0]
	}
	if rec.ParentRunID == "" {
		for i := len(runs) - 1; i > 0; i-- {
			if runs[i] == rec.RunID {
				rec.ParentRunID = runs[i-1]
				break
			}
		}
	}
}

// prepareArguments stores the digest of the exact arguments and keeps the
// arguments themselves, redacted, only when configured.
func (l *Log) prepareArguments(rec *Record) {
	raw := rec.Arguments
	rec.Arguments = nil
	rec.ArgumentsOmitted = ""
	if len(raw) == 0 {
		return
	}
	rec.ArgumentsDigest = DigestArguments(raw)
	if !l.opts.recordArguments {
		return
	}
	if len(raw) > MaxArgumentsSize {
		rec.ArgumentsOmitted = ArgumentsTooLarge
		return
	}
	redacted, err := Redact(raw, l.opts.redact)
	if err != nil {
		rec.ArgumentsOmitted = ArgumentsInvalidJSON
		return
	}
	rec.Arguments = redacted
}
