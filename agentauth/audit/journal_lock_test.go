package audit

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSecondWriterAfterLockRemoved checks that a second writer cannot open
// the log after the lock file was removed while a writer runs, as an
// operator clearing what looks like a stale lock would. Such a writer
// would replay and truncate the journal the first writer still appends to.
func TestSecondWriterAfterLockRemoved(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	a, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	appendN(t, a, 5)
	if err := os.Remove(path + ".lock"); err != nil {
		t.Fatal(err)
	}
	b, err := Open(path)
	t.Logf("second Open: %v", err)
	if err == nil {
		defer b.Close()
		sa, errA := a.Append(context.Background(), decisionRecord(1))
		sb, errB := b.Append(context.Background(), decisionRecord(2))
		t.Errorf("a second writer opened the log after its lock file was removed; a seq %d (%v), b seq %d (%v)", sa, errA, sb, errB)
		time.Sleep(50 * time.Millisecond)
		t.Logf("close a: %v; close b: %v", a.Close(), b.Close())
		c, err := Open(path)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer c.Close()
		rep, err := c.Verify(context.Background())
		t.Logf("after both closed: records %d, head %d, ok %v, %v", rep.Records, rep.HeadSeq, rep.OK(), err)
	}
}

// TestJournalSymlinkRefused checks that a journal path that is a symbolic
// link is refused, so that Open never takes the target for a journal and
// truncates it as a torn frame.
func TestJournalSymlinkRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.db")
	victim := filepath.Join(dir, "victim.bin")
	if err := os.WriteFile(victim, []byte{0, 0, 0, 200, 'i', 'm', 'p', 'o', 'r', 't', 'a', 'n', 't'}, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, path+JournalSuffix); err != nil {
		t.Fatal(err)
	}
	l, err := Open(path)
	if err == nil {
		l.Close()
	}
	if info, _ := os.Stat(victim); info.Size() == 0 {
		t.Errorf("Open followed the journal symlink and truncated its target (Open err %v)", err)
	}
}

// TestNonCanonicalFrameRefused checks that a frame whose checksum, seq and
// prev are right but whose record is not in canonical form (one extra
// space) is refused. Stored, it would verify in the database but not in an
// export, which encodes records canonically.
func TestNonCanonicalFrameRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	rec := decisionRecord(0)
	rec.Time = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b, err := encodeBody(&rec)
	if err != nil {
		t.Fatal(err)
	}
	canon := bytes.Replace(canonical(1, GenesisHash, b), []byte(`{"seq":1,"prev"`), []byte(`{"seq":1, "prev"`), 1)
	if err := os.WriteFile(path+JournalSuffix, appendFrame(nil, canon), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := Open(path)
	if err == nil {
		l.Close()
		t.Fatal("Open accepted a journal frame that is not in canonical form")
	}
	if !strings.Contains(err.Error(), "not in canonical form") || !strings.Contains(err.Error(), "offset 0") {
		t.Errorf("Open: %v, want an error naming the frame's offset and its form", err)
	}
}
