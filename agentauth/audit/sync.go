package audit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// committed is one batch whose transaction is committed to the WAL but
// not yet known to be on stable storage.
type committed struct {
	batch []*pending
	seq   uint64
	hash  string
}

// walSyncer makes committed batches durable by fsyncing the WAL file.
//
// The writer connection commits with synchronous=NORMAL, so a commit
// writes the WAL frames without waiting for the disk, and the syncer
// fsyncs the WAL afterwards, answering Append only then. While one fsync
// runs, the writer already commits the next batch, so the rate is bound
// by the slower of the two steps rather than by their sum. A record is
// never reported stored before an fsync that began after its commit:
// frames still in the WAL are covered by that fsync, and frames a
// checkpoint already moved into the database file were synced there by
// SQLite, which in NORMAL mode syncs the WAL before a checkpoint and the
// database after it, before the WAL is reused.
type walSyncer struct {
	path string // the WAL file, the database path plus "-wal"

	mu     sync.Mutex
	file   *os.File
	info   os.FileInfo
	synced bool // the folder entry of file was synced
}

func newWALSyncer(dbPath string) *walSyncer {
	return &walSyncer{path: dbPath + "-wal"}
}

// sync fsyncs the WAL. It reopens the file when SQLite replaced it (when
// every connection closed, SQLite deletes the WAL), and fsyncs the folder
// once per file so that the file's own entry survives a power loss.
func (s *walSyncer) sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reopenIfReplaced(); err != nil {
		return err
	}
	if err := s.file.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", s.path, err)
	}
	if !s.synced {
		if err := syncFolder(filepath.Dir(s.path)); err != nil {
			return err
		}
		s.synced = true
	}
	return nil
}

func (s *walSyncer) reopenIfReplaced() error {
	info, err := os.Stat(s.path)
	if err != nil {
		return fmt.Errorf("stat %s: %w", s.path, err)
	}
	if s.file != nil && os.SameFile(info, s.info) {
		return nil
	}
	f, err := os.OpenFile(s.path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", s.path, err)
	}
	if s.file != nil {
		_ = s.file.Close()
	}
	s.file, s.info, s.synced = f, info, false
	return nil
}

func (s *walSyncer) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file == nil {
		return nil
	}
	err := s.file.Close()
	s.file = nil
	return err
}

func syncFolder(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open folder %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync folder %s: %w", dir, err)
	}
	return nil
}

// syncLoop is the syncer goroutine. It fsyncs once for every committed
// batch queued meanwhile, then answers their Appends.
func (l *Log) syncLoop(ctx context.Context) {
	defer close(l.syncDone)
	for first := range l.syncs {
		ready := l.collectCommitted([]committed{first})
		err := l.wal.sync()
		n := 0
		for _, c := range ready {
			n += len(c.batch)
		}
		if err != nil {
			err = fmt.Errorf("audit: append to %s: %w", l.path, err)
			l.setFailure(err)
			l.metrics.failures.Add(ctx, int64(n))
		} else {
			last := ready[len(ready)-1]
			l.setDurableHead(last.seq, last.hash)
			l.setFailure(nil)
			l.metrics.appended.Add(ctx, int64(n))
		}
		for _, c := range ready {
			for _, p := range c.batch {
				p.result <- err
			}
		}
	}
}

func (l *Log) collectCommitted(ready []committed) []committed {
	for {
		select {
		case c, ok := <-l.syncs:
			if !ok {
				return ready
			}
			ready = append(ready, c)
		default:
			return ready
		}
	}
}

func (l *Log) setDurableHead(seq uint64, hash string) {
	l.headMu.Lock()
	l.headSeq, l.headHash = seq, hash
	l.headMu.Unlock()
}
