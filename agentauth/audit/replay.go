package audit

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"syscall"
)

// replayJournal opens the journal and inserts into SQLite every record it
// holds after the head of SQLite: those a killed process had appended
// but not yet inserted. It then empties the journal, which also drops a
// torn last frame.
func (l *Log) replayJournal(ctx context.Context) error {
	j, err := openJournal(l.path+JournalSuffix, l.opts.fsync)
	if err != nil {
		return err
	}
	j.beforeTruncate = l.syncDatabase
	l.j = j
	frames, valid, err := j.readAll()
	if err != nil {
		return err
	}
	if info, err := j.f.Stat(); err == nil && info.Size() > valid {
		l.log.Warn("audit journal ends with a partial frame from a crash; dropping it",
			"offset", valid, "bytes", info.Size()-valid)
	}
	if err := l.insertFrames(ctx, frames); err != nil {
		return err
	}
	j.setHead(l.w.head())
	if err := j.truncateLocked(); err != nil {
		return err
	}
	return nil
}

// insertFrames inserts the frames after the head of SQLite in batches.
// The first of them must link to that head.
func (l *Log) insertFrames(ctx context.Context, frames []journalFrame) error {
	head, headHash := l.w.head()
	var batch []*pending
	for i := range frames {
		fr := &frames[i]
		if fr.line.Seq <= head {
			// NOTE: such a frame is not compared with the stored row, so a
			// journal whose old frames differ from the database is emptied
			// without a word.
			continue
		}
		if len(batch) == 0 && (fr.line.Seq != head+1 || fr.line.Prev != headHash) {
			return fmt.Errorf("audit: journal %s starts at seq %d, which does not follow the database head seq %d; %w: "+
				"move the journal aside and run agentauth audit verify", l.j.path, fr.line.Seq, head, errJournalGap)
		}
		rec := fr.line.body.record()
		batch = append(batch, &pending{cols: columnsOf(&rec), seq: fr.line.Seq, hash: fr.hash, canon: fr.canon})
	}
	if len(batch) == 0 {
		return nil
	}
	for len(batch) > 0 {
		n := min(len(batch), l.opts.maxBatch)
		if err := l.w.insertBatch(ctx, batch[:n]); err != nil {
			return fmt.Errorf("audit: insert journal records into %s: %w", l.path, err)
		}
		last := batch[n-1]
		l.w.setHead(last.seq, last.hash)
		batch = batch[n:]
	}
	l.log.Info("audit journal replayed", "head_seq", frames[len(frames)-1].line.Seq)
	return nil
}

// syncDatabase fdatasyncs the database and WAL files, so that every
// commit so far survives a power loss. SQLite commits with
// synchronous=NORMAL write the WAL without syncing it; a WAL restarted
// by a checkpoint had its frames copied into the database file first.
func (l *Log) syncDatabase() error {
	for _, name := range []string{l.path, l.path + "-wal"} {
		f, err := os.Open(name)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("audit: open %s to sync it: %w", name, err)
		}
		err = syscall.Fdatasync(int(f.Fd()))
		f.Close()
		if err != nil {
			return fmt.Errorf("audit: fdatasync %s: %w", name, err)
		}
	}
	return nil
}

// recoverJournal inserts the journal of a log whose writer was killed,
// so that a read-only Open reads every appended record. It does nothing
// when the journal is empty or a running writer holds the log.
//
// NOTE: while it replays, it holds the writer's flock, so a gateway
// starting in that moment fails to open the log and must be restarted.
func recoverJournal(path string, logger *slog.Logger) error {
	info, err := os.Stat(path + JournalSuffix)
	if err != nil || info.Size() == 0 {
		return nil
	}
	w, err := Open(path, WithLogger(logger))
	if errors.Is(err, errLocked) {
		return nil
	}
	if errors.Is(err, fs.ErrPermission) {
		logger.Warn("audit journal not replayed: no write access; records appended before the writer stopped are missing until it opens the log again",
			"journal", path+JournalSuffix, "error", err)
		return nil
	}
	if err != nil {
		return err
	}
	return w.Close()
}

// Flush returns once every record appended before the call is in SQLite,
// where other processes' queries, exports and Verify see it, or with the
// error of a failed insert. It does nothing on a log opened read-only.
func (l *Log) Flush(ctx context.Context) error {
	if l.j == nil {
		return nil
	}
	if l.closedForReads() {
		return ErrClosed
	}
	seq, _ := l.j.head()
	if err := l.w.wait(ctx, seq); err != nil {
		return fmt.Errorf("audit: flush %s: %w", l.path, err)
	}
	return nil
}

// settle is Flush for readers of a log opened for writing, so that a
// query returns every record appended through the same Log before it.
func (l *Log) settle(ctx context.Context) error {
	if l.j == nil || l.closedForReads() {
		return nil
	}
	return l.Flush(ctx)
}

func (l *Log) closedForReads() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.closed
}
