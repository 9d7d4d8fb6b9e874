package audit

import (
	"context"
	"fmt"
	"time"
)

// Append adds rec to the log and returns its sequence number once the
// record, numbered and hashed, is written to the journal: with one write
// call, followed by an fdatasync unless the log was opened
// WithFsync(false). Concurrent Appends share one fdatasync. A background
// goroutine then inserts the record into SQLite, where readers see it.
// While those inserts fail, Append also waits for its record's insert,
// so that calls are denied until SQLite accepts records again.
//
// An error means the record may or may not be stored: a record written
// to the journal is inserted once SQLite accepts it, even when Append
// returned an error while waiting for that. The gateway denies a call
// whose Append failed.
func (l *Log) Append(ctx context.Context, rec Record) (uint64, error) {
	if l.opts.readOnly {
		return 0, ErrReadOnly
	}
	p, err := l.prepare(&rec)
	if err != nil {
		return 0, err
	}
	seq, err := l.journalRecord(ctx, p)
	if err != nil {
		l.metrics.failures.Add(ctx, 1)
		return 0, err
	}
	return seq, nil
}

func (l *Log) journalRecord(ctx context.Context, p *pending) (uint64, error) {
	end, err := l.writeJournal(p)
	if err != nil {
		return 0, err
	}
	if l.opts.fsync {
		if err := l.j.syncTo(end); err != nil {
			err = fmt.Errorf("audit: append to %s: %w", l.path, err)
			l.setJournalFailure(err)
			return 0, err
		}
	}
	if l.failure.Load() != nil {
		if err := l.w.wait(ctx, p.seq); err != nil {
			return 0, fmt.Errorf("audit: append waited for its insert into %s: %w", l.path, err)
		}
	}
	return p.seq, nil
}

// writeJournal writes p to the journal unless the log is closed.
func (l *Log) writeJournal(p *pending) (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return 0, ErrClosed
	}
	end, err := l.j.write(p, l.w.push)
	if err != nil {
		err = fmt.Errorf("audit: append to %s: %w", l.path, err)
		l.setJournalFailure(err)
		return 0, err
	}
	l.setJournalFailure(nil)
	return end, nil
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
	return &pending{body: b, cols: columnsOf(rec)}, nil
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
