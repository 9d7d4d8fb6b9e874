package audit

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// walFrameBytes is the size of one WAL frame with 4 KiB pages.
const walFrameBytes = 4096 + 24

func withCheckpoints(commits, records, limit int, interval time.Duration) Option {
	return func(o *options) {
		o.checkpointCommits, o.checkpointRecords = commits, records
		o.walLimitFrames, o.checkpointInterval = limit, interval
	}
}

func TestWriterAutoCheckpointOff(t *testing.T) {
	l := openTest(t)
	var pages int
	if err := l.wdb.QueryRow(`PRAGMA wal_autocheckpoint`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if pages != 0 {
		t.Errorf("wal_autocheckpoint on the writer connection = %d, want 0", pages)
	}
}

// TestCheckpointBoundsWAL appends enough records for a WAL of about 32,000
// frames without checkpoints, and checks that the WAL stayed near the
// lowered bound of 256 frames. The test allows 16384 frames, because
// appends go on while the checkpointer waits for a core on a busy machine.
func TestCheckpointBoundsWAL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	l, err := Open(path, WithFsync(false), withCheckpoints(10, 40, 256, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	opened := fileSize(path)
	appendN(t, l, 4000)
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}

	wal := fileSize(path + "-wal")
	if limit := int64(16384 * walFrameBytes); wal > limit {
		t.Errorf("WAL is %d bytes after 4000 appends, want at most %d", wal, limit)
	}
	t.Logf("WAL file: %d bytes, %d frames", wal, wal/walFrameBytes)
	if fileSize(path) <= opened {
		t.Errorf("database file stayed at %d bytes: no checkpoint copied the WAL into it", opened)
	}
	rep, err := l.Verify(context.Background())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rep.Records != 4000 {
		t.Errorf("Verify counted %d records, want 4000", rep.Records)
	}
}

// TestCheckpointOnTimer checks that a log with few appends still reaches
// the database file.
func TestCheckpointOnTimer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	l, err := Open(path, withCheckpoints(1000, 1000, walLimitFrames, 10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	opened := fileSize(path) // the header page that WAL mode wrote
	appendN(t, l, 5)

	deadline := time.Now().Add(10 * time.Second)
	for fileSize(path) <= opened {
		if time.Now().After(deadline) {
			t.Fatalf("database file still %d bytes 10 s after the appends: the timed checkpoint did not run", opened)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCloseTruncatesWAL keeps a reader open so that SQLite's own cleanup
// when the last connection closes cannot empty the WAL.
func TestCloseTruncatesWAL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 100)
	r, err := Open(path, ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Query(context.Background(), Filter{Limit: 1}); err != nil {
		t.Fatal(err)
	}

	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := fileSize(path + "-wal"); got != 0 {
		t.Errorf("WAL is %d bytes after Close, want 0", got)
	}
	recs, err := r.Query(context.Background(), Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 100 {
		t.Errorf("reader sees %d records after Close, want 100", len(recs))
	}
}
