package audit

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// journalChildEnv names the log that TestJournalChild appends to.
const journalChildEnv = "AGENTAUTH_AUDIT_JOURNAL_CHILD_LOG"

// journalChildRecords is how many records TestJournalChild appends.
const journalChildRecords = 20

// withPausedInserter keeps appended records in the journal only.
func withPausedInserter() Option {
	return func(o *options) { o.pauseInserter = true }
}

// TestJournalChild appends records that stay in the journal, then kills
// its own process with SIGKILL, as a crash between the journal write and
// the SQLite insert would.
func TestJournalChild(t *testing.T) {
	path := os.Getenv(journalChildEnv)
	if path == "" {
		t.Skip("runs only as the child of the journal replay tests")
	}
	l, err := Open(path, withPausedInserter())
	if err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(1)
	}
	for i := range journalChildRecords {
		if _, err := l.Append(context.Background(), decisionRecord(i)); err != nil {
			fmt.Printf("error %v\n", err)
			os.Exit(1)
		}
	}
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	time.Sleep(time.Minute)
}

// killedWithJournal runs TestJournalChild and returns the path of a log
// whose records are all in its journal and none in SQLite.
func killedWithJournal(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	path := filepath.Join(t.TempDir(), "audit.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestJournalChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), journalChildEnv+"="+path)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child: %v, want killed by SIGKILL\n%s", err, out)
	}
	if n := storedRecords(t, path); n != 0 {
		t.Fatalf("SQLite holds %d records after the kill, want 0", n)
	}
	return path
}

// storedRecords counts the records in SQLite without opening the log,
// which would replay the journal.
func storedRecords(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=query_only(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM records`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// journalFrames decodes the journal of the log at path.
func journalFrames(t *testing.T, path string) ([]byte, []journalFrame) {
	t.Helper()
	data, err := os.ReadFile(path + JournalSuffix)
	if err != nil {
		t.Fatal(err)
	}
	frames, valid, err := decodeJournal(data)
	if err != nil || valid != int64(len(data)) {
		t.Fatalf("journal decodes to %d frames, %d of %d bytes, %v", len(frames), valid, len(data), err)
	}
	return data, frames
}

// checkReplayed opens the log for writing and checks that it holds want
// records that verify, and that the journal was emptied.
func checkReplayed(t *testing.T, path string, want int) {
	t.Helper()
	l, err := Open(path)
	if err != nil {
		t.Fatalf("Open after the kill: %v", err)
	}
	defer l.Close()
	rep, err := l.Verify(context.Background())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rep.Records != uint64(want) {
		t.Errorf("Verify counted %d records, want %d", rep.Records, want)
	}
	if seq, _, _ := l.Head(context.Background()); seq != uint64(want) {
		t.Errorf("head seq = %d, want %d", seq, want)
	}
	if size := fileSize(path + JournalSuffix); size != 0 {
		t.Errorf("journal is %d bytes after replay, want 0", size)
	}
	seq, err := l.Append(context.Background(), decisionRecord(0))
	if err != nil || seq != uint64(want+1) {
		t.Errorf("Append after replay = %d, %v; want %d", seq, err, want+1)
	}
}

func TestJournalReplayAfterKill(t *testing.T) {
	path := killedWithJournal(t)
	_, frames := journalFrames(t, path)
	if len(frames) != journalChildRecords {
		t.Fatalf("journal holds %d frames, want %d", len(frames), journalChildRecords)
	}
	checkReplayed(t, path, journalChildRecords)
}

func TestJournalReplayOnReadOnlyOpen(t *testing.T) {
	path := killedWithJournal(t)
	r, err := Open(path, ReadOnly())
	if err != nil {
		t.Fatalf("read-only Open after the kill: %v", err)
	}
	defer r.Close()
	recs, err := r.Query(context.Background(), Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != journalChildRecords {
		t.Errorf("read-only Query = %d records, want %d", len(recs), journalChildRecords)
	}
}

func TestJournalTornFinalFrame(t *testing.T) {
	for _, tc := range []struct {
		name string
		cut  func(data []byte, last journalFrame) []byte
	}{
		{"cut in payload", func(d []byte, last journalFrame) []byte { return d[:len(d)-10] }},
		{"cut in header", func(d []byte, last journalFrame) []byte { return d[:last.offset+3] }},
		{"zero filled", func(d []byte, last journalFrame) []byte {
			out := bytes.Clone(d)
			clear(out[last.offset+frameHeaderSize:])
			return out
		}},
		{"zero tail", func(d []byte, last journalFrame) []byte {
			out := bytes.Clone(d[:last.offset])
			return append(out, make([]byte, 4096)...)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := killedWithJournal(t)
			data, frames := journalFrames(t, path)
			torn := tc.cut(data, frames[len(frames)-1])
			if err := os.WriteFile(path+JournalSuffix, torn, 0o600); err != nil {
				t.Fatal(err)
			}
			checkReplayed(t, path, journalChildRecords-1)
		})
	}
}

func TestJournalCorruptFrameRefused(t *testing.T) {
	path := killedWithJournal(t)
	data, frames := journalFrames(t, path)
	bad := frames[5]
	data[bad.offset+frameHeaderSize+20] ^= 0x01
	if err := os.WriteFile(path+JournalSuffix, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path)
	want := fmt.Sprintf("frame at offset %d is corrupted", bad.offset)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Open = %v, want an error containing %q", err, want)
	}
	if _, err := Open(path, ReadOnly()); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("read-only Open = %v, want an error containing %q", err, want)
	}
	if n := storedRecords(t, path); n != 0 {
		t.Errorf("SQLite holds %d records after the refused Open, want 0", n)
	}
}

func TestJournalCorruptLengthRefused(t *testing.T) {
	path := killedWithJournal(t)
	data, frames := journalFrames(t, path)
	bad := frames[5]
	// A length that runs past the end of the file, as a torn write's would.
	binary.BigEndian.PutUint32(data[bad.offset:], uint32(len(data)))
	if err := os.WriteFile(path+JournalSuffix, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path)
	want := fmt.Sprintf("frame at offset %d is corrupted", bad.offset)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Open = %v, want an error containing %q", err, want)
	}
}

func TestJournalGapRefused(t *testing.T) {
	path := killedWithJournal(t)
	data, frames := journalFrames(t, path)
	if err := os.WriteFile(path+JournalSuffix, data[frames[1].offset:], 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path)
	if err == nil || !strings.Contains(err.Error(), "does not follow the database head seq 0") {
		t.Fatalf("Open = %v, want a gap error", err)
	}
}

func TestJournalRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	l, err := Open(path, func(o *options) { o.journalRotateBytes = 4096 })
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	appendN(t, l, 200)
	if err := l.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The inserter truncates right after the insert that Flush waited for.
	deadline := time.Now().Add(10 * time.Second)
	for fileSize(path+JournalSuffix) > 4096 {
		if time.Now().After(deadline) {
			t.Fatalf("journal is %d bytes after 200 appends, want at most 4096", fileSize(path+JournalSuffix))
		}
		time.Sleep(5 * time.Millisecond)
	}
	rep, err := l.Verify(context.Background())
	if err != nil || rep.Records != 200 {
		t.Fatalf("Verify = %d records, %v; want 200", rep.Records, err)
	}
	appendN(t, l, 3)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if size := fileSize(path + JournalSuffix); size != 0 {
		t.Errorf("journal is %d bytes after Close, want 0", size)
	}
	if n := storedRecords(t, path); n != 203 {
		t.Errorf("SQLite holds %d records after Close, want 203", n)
	}
}

func TestJournalKeepsUninsertedFrames(t *testing.T) {
	l := openTest(t, withPausedInserter(), func(o *options) { o.journalRotateBytes = 0 })
	appendN(t, l, 10)
	before := fileSize(l.j.path)
	if err := l.j.truncateIf(0, l.w.applied); err != nil {
		t.Fatal(err)
	}
	if after := fileSize(l.j.path); after != before || after == 0 {
		t.Errorf("journal went from %d to %d bytes with no record in SQLite, want it kept", before, after)
	}
}

func TestDecodeJournalHostile(t *testing.T) {
	frame := func(payload string) []byte { return appendFrame(nil, []byte(payload)) }
	huge := binary.BigEndian.AppendUint32(nil, MaxRecordSize+1)
	huge = append(huge, make([]byte, 64)...)
	huge[10] = 1
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"oversized length", append(huge, frame("x")...), "offset 0 is corrupted"},
		{"not JSON", append(frame("not json"), frame("x")...), "frame at offset 0: invalid record"},
		{"hash member", frame(`{"seq":1,"prev":"` + GenesisHash + `","time":"2026-01-01T00:00:00Z","kind":"decision","hash":"` + GenesisHash + `"}`), "contains a hash member"},
		{"zero length then data", append(make([]byte, 8), 1), "offset 0 is corrupted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := decodeJournal(tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("decodeJournal = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// FuzzDecodeJournal checks that decodeJournal never panics and that the
// frames it accepts encode back to exactly the prefix it reports valid.
func FuzzDecodeJournal(f *testing.F) {
	l := openTest(f, withPausedInserter())
	appendN(f, l, 3)
	data, err := os.ReadFile(l.j.path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add(data[:len(data)-5])
	f.Add(append(bytes.Clone(data), 0, 0, 0))
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 0, '{'})
	f.Fuzz(func(t *testing.T, data []byte) {
		frames, valid, err := decodeJournal(data)
		if err != nil {
			return
		}
		if valid > int64(len(data)) {
			t.Fatalf("valid %d is past the end %d", valid, len(data))
		}
		var out []byte
		for _, fr := range frames {
			if hashOf(fr.canon) != fr.hash {
				t.Fatalf("frame at %d: hash does not match its canonical encoding", fr.offset)
			}
			out = appendFrame(out, fr.canon)
		}
		if !bytes.Equal(out, data[:valid]) {
			t.Fatalf("frames encode to %d bytes, want the %d valid bytes", len(out), valid)
		}
	})
}
