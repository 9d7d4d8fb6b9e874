package audit

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// rotateChildEnv names the log of TestAttackChildRotator.
const rotateChildEnv = "AGENTAUTH_AUDIT_ROTATE_CHILD_LOG"

// TestAttackChildRotator appends from 8 goroutines to a log whose
// journal is truncated as soon as it passes 2 KiB, so that a kill often
// lands in a truncation, and prints "ack SEQ MESSAGE" for every Append
// that returned success.
func TestAttackChildRotator(t *testing.T) {
	path := os.Getenv(rotateChildEnv)
	if path == "" {
		t.Skip("runs only as the child of TestAttackKillDuringRotation")
	}
	small := func(o *options) { o.journalRotateBytes = 2048; o.maxBatch = 7 }
	l, err := Open(path, small)
	if err != nil {
		fmt.Printf("error %v\n", err)
		return
	}
	round := os.Getenv("AGENTAUTH_AUDIT_ROTATE_ROUND")
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				rec := decisionRecord(i)
				rec.Message = fmt.Sprintf("r%s-w%d-%d", round, w, i)
				seq, err := l.Append(context.Background(), rec)
				if err != nil {
					fmt.Printf("error %v\n", err)
					return
				}
				mu.Lock()
				fmt.Printf("ack %d %s\n", seq, rec.Message)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// TestAttackKillDuringRotation kills an appending process whose journal
// rotates every few records, several times over the same log, each
// child replaying the journal its killed predecessor left. Every
// acknowledged record of every round must be stored, and Verify pass.
func TestAttackKillDuringRotation(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	path := filepath.Join(t.TempDir(), "audit.db")
	acks := map[uint64]string{}
	for round := range 5 {
		cmd, out := startChild(t, "TestAttackChildRotator", path,
			rotateChildEnv+"="+path, fmt.Sprintf("AGENTAUTH_AUDIT_ROTATE_ROUND=%d", round))
		r := bufio.NewReader(out)
		// Kill after a different number of acks each round.
		want := 50 + round*137
		deadline := time.Now().Add(5 * time.Second)
		n, killed := 0, false
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				break
			}
			if seq, msg, ok := parseAck(t, line); ok {
				if old, dup := acks[seq]; dup {
					t.Errorf("round %d: seq %d acknowledged twice (%s, then %s)", round, seq, old, msg)
				}
				acks[seq] = msg
				n++
			}
			if !killed && (n >= want || time.Now().After(deadline)) {
				_ = cmd.Process.Signal(syscall.SIGKILL)
				killed = true
			}
		}
		_ = cmd.Wait()
		if !killed || n == 0 {
			t.Fatalf("round %d: child stopped on its own after %d acks", round, n)
		}
	}
	checkAcked(t, path, acks)
}

// checkAcked opens the log at path and checks that Verify passes and that
// every acknowledged record is stored with its message.
func checkAcked(t *testing.T, path string, acks map[uint64]string) {
	t.Helper()
	l, err := Open(path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer l.Close()
	ctx := context.Background()
	rep, err := l.Verify(ctx)
	if err != nil || !rep.OK() {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	recs, err := l.Query(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	stored := map[uint64]string{}
	for _, r := range recs {
		stored[r.Seq] = r.Message
	}
	for seq, msg := range acks {
		if got, ok := stored[seq]; !ok || got != msg {
			t.Errorf("acknowledged seq %d (%s): stored %q, present %v", seq, msg, got, ok)
		}
	}
	t.Logf("%d acknowledged, %d stored", len(acks), rep.Records)
}

// craftFrame returns the frame of record i at seq with the given prev,
// and the record's hash.
func craftFrame(t *testing.T, seq uint64, prev string, i int) ([]byte, string) {
	t.Helper()
	rec := decisionRecord(i)
	rec.Time = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b, err := encodeBody(&rec)
	if err != nil {
		t.Fatal(err)
	}
	canon := canonical(seq, prev, b)
	return appendFrame(nil, canon), hashOf(canon)
}

// craftJournal returns a journal of n linked frames from seq first,
// whose first frame names prev.
func craftJournal(t *testing.T, first uint64, prev string, n int) []byte {
	t.Helper()
	var out []byte
	for i := range n {
		f, h := craftFrame(t, first+uint64(i), prev, i)
		out, prev = append(out, f...), h
	}
	return out
}

// checkRejectedIntact opens the log twice and checks that both Opens
// fail with want and that the journal keeps its bytes.
func checkRejectedIntact(t *testing.T, path string, journal []byte, want string) {
	t.Helper()
	for range 2 {
		l, err := Open(path)
		if err == nil {
			l.Close()
			t.Fatalf("Open accepted the journal, want an error containing %q", want)
		}
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("Open = %v, want an error containing %q", err, want)
		}
	}
	got, err := os.ReadFile(path + JournalSuffix)
	if err != nil || !bytes.Equal(got, journal) {
		t.Fatalf("journal changed after rejected Opens (%d bytes, want %d): %v", len(got), len(journal), err)
	}
}

// TestAttackWrongPrevFrame checks that a frame with a valid checksum and
// the right seq but a wrong prev is rejected, and the journal kept.
func TestAttackWrongPrevFrame(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	j := craftJournal(t, 1, strings.Repeat("f", 64), 3)
	if err := os.WriteFile(path+JournalSuffix, j, 0o600); err != nil {
		t.Fatal(err)
	}
	checkRejectedIntact(t, path, j, "does not follow the database head seq 0")
	if n := storedRecords(t, path); n != 0 {
		t.Fatalf("SQLite holds %d records after rejected Opens, want 0", n)
	}
}

// TestAttackMissingDatabase checks that a missing or empty database
// takes every record of a journal that starts at seq 1. A journal that
// starts later is rejected and kept.
func TestAttackMissingDatabase(t *testing.T) {
	for _, name := range []string{"missing", "empty file"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.db")
			if name == "empty file" {
				if err := os.WriteFile(path, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(path+JournalSuffix, craftJournal(t, 1, GenesisHash, 9), 0o600); err != nil {
				t.Fatal(err)
			}
			checkReplayed(t, path, 9)
		})
	}
	t.Run("journal starts at seq 5", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "audit.db")
		j := craftJournal(t, 5, strings.Repeat("a", 64), 4)
		if err := os.WriteFile(path+JournalSuffix, j, 0o600); err != nil {
			t.Fatal(err)
		}
		checkRejectedIntact(t, path, j, "starts at seq 5")
	})
}

// TestAttackForeignJournal checks that the journal of another log, whose
// records run past this log's head, is rejected because its records do
// not link to this log's chain.
func TestAttackForeignJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 10)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Records 1 to 20 of a chain that differs from this log's.
	j := craftJournal(t, 1, GenesisHash, 20)
	if err := os.WriteFile(path+JournalSuffix, j, 0o600); err != nil {
		t.Fatal(err)
	}
	checkRejectedIntact(t, path, j, "starts at seq 11")
	if n := storedRecords(t, path); n != 10 {
		t.Fatalf("SQLite holds %d records, want 10", n)
	}
}

// TestAttackConcurrentOpens opens a killed writer's log from 4 writers
// and 4 readers at once. Writers may fail only because the log is
// locked, readers must open, and afterwards every record is stored.
func TestAttackConcurrentOpens(t *testing.T) {
	path := killedWithJournal(t)
	var mu sync.Mutex
	var wg sync.WaitGroup
	var writers, locked int
	var others []error
	for i := range 8 {
		wg.Go(func() {
			var opts []Option
			if i%2 == 1 {
				opts = append(opts, ReadOnly())
			}
			l, err := Open(path, opts...)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && i%2 == 0:
				writers++
			case err == nil:
			case errors.Is(err, errLocked):
				locked++
			default:
				others = append(others, err)
			}
			if err == nil {
				// Hold the log a moment so that the Opens overlap.
				time.Sleep(20 * time.Millisecond)
				_ = l.Close()
			}
		})
	}
	wg.Wait()
	if len(others) > 0 {
		t.Errorf("Opens failed for reasons other than the lock: %v", others)
	}
	t.Logf("%d writers opened, %d Opens found the log locked", writers, locked)
	checkReplayed(t, path, journalChildRecords)
}

// TestAttackGarbageTail checks journals that end in a short header, a
// payload shorter than its header declares, or a payload of zero bytes.
// These are torn tails, so the frames before them are replayed and the
// tail is dropped.
func TestAttackGarbageTail(t *testing.T) {
	for name, tail := range map[string][]byte{
		"short header":   {0, 0, 1},
		"short payload":  append([]byte{0, 0, 0, 200, 1, 2, 3, 4}, []byte(`{"seq":`)...),
		"zeroed payload": append([]byte{0, 0, 0, 16, 9, 9, 9, 9}, make([]byte, 16)...),
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.db")
			j := append(craftJournal(t, 1, GenesisHash, 4), tail...)
			if err := os.WriteFile(path+JournalSuffix, j, 0o600); err != nil {
				t.Fatal(err)
			}
			checkReplayed(t, path, 4)
		})
	}
}

// TestAttackKillDuringReplay kills the child while its Open replays a
// journal of 3000 records, at a different moment each round. The
// records of the journal and every acknowledged record must survive.
func TestAttackKillDuringReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	path := filepath.Join(t.TempDir(), "audit.db")
	const journaled = 3000
	if err := os.WriteFile(path+JournalSuffix, craftJournal(t, 1, GenesisHash, journaled), 0o600); err != nil {
		t.Fatal(err)
	}
	acks := map[uint64]string{}
	for round, delay := range []time.Duration{20 * time.Millisecond, 50 * time.Millisecond, 90 * time.Millisecond, 150 * time.Millisecond, 300 * time.Millisecond} {
		cmd, out := startChild(t, "TestAttackChildRotator", path,
			rotateChildEnv+"="+path, fmt.Sprintf("AGENTAUTH_AUDIT_ROTATE_ROUND=%d", round))
		lines := make(chan string)
		go func() {
			defer close(lines)
			r := bufio.NewReader(out)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				lines <- line
			}
		}()
		kill := time.After(delay)
	read:
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					break read
				}
				if seq, msg, ok := parseAck(t, line); ok {
					acks[seq] = msg
				}
			case <-kill:
				_ = cmd.Process.Signal(syscall.SIGKILL)
			}
		}
		_ = cmd.Wait()
		t.Logf("round %d: killed after %v, %s", round, delay, countRecords(path))
	}
	for i := range journaled {
		if _, ok := acks[uint64(i+1)]; ok {
			t.Fatalf("seq %d was acknowledged by a child, but the journal held it before", i+1)
		}
		acks[uint64(i+1)] = fmt.Sprintf("call %d", i)
	}
	checkAcked(t, path, acks)
}

// countRecords describes how many records SQLite holds at path, without
// replaying the journal. A kill can leave the file without a schema.
func countRecords(path string) string {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=query_only(1)")
	if err != nil {
		return err.Error()
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM records`).Scan(&n); err != nil {
		return "no records table: " + err.Error()
	}
	return fmt.Sprintf("%d records in SQLite", n)
}

// partialChildEnv names the log of TestAttackChildPartialWrite.
const partialChildEnv = "AGENTAUTH_AUDIT_PARTIAL_CHILD_LOG"

// TestAttackChildPartialWrite appends 20 records that stay in the
// journal, lowers the file size limit so that the next frame is written
// only in part, appends 5 more after lifting the limit, and kills itself.
// It prints "ack SEQ MESSAGE" for each successful Append and "failed" for
// the Append under the limit.
func TestAttackChildPartialWrite(t *testing.T) {
	path := os.Getenv(partialChildEnv)
	if path == "" {
		t.Skip("runs only as the child of TestAttackPartialFrameCut")
	}
	l, err := Open(path, withPausedInserter())
	if err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(1)
	}
	ctx := context.Background()
	appendAck := func(i int) {
		rec := decisionRecord(i)
		rec.Message = fmt.Sprintf("m%d", i)
		seq, err := l.Append(ctx, rec)
		if err != nil {
			fmt.Printf("error %v\n", err)
			os.Exit(1)
		}
		fmt.Printf("ack %d %s\n", seq, rec.Message)
	}
	for i := range 20 {
		appendAck(i)
	}

	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(1)
	}
	limit := uint64(fileSize(path+JournalSuffix) + 100)
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: limit, Max: old.Max}); err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(1)
	}
	if _, err := l.Append(ctx, decisionRecord(99)); err != nil {
		fmt.Printf("failed %d\n", fileSize(path+JournalSuffix))
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(1)
	}
	for i := 20; i < 25; i++ {
		appendAck(i)
	}
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	time.Sleep(time.Minute)
}

// TestAttackPartialFrameCut checks that a frame written only in part,
// because the file size limit was reached, is cut off before the next
// Append: the journal decodes whole, and the 25 acknowledged records
// replay and verify after a kill.
func TestAttackPartialFrameCut(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	path := filepath.Join(t.TempDir(), "audit.db")
	cmd, out := startChild(t, "TestAttackChildPartialWrite", path, partialChildEnv+"="+path)

	acks := map[uint64]string{}
	failed := false
	r := bufio.NewReader(out)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			break
		}
		if strings.HasPrefix(line, "failed") {
			failed = true
		}
		if seq, msg, ok := parseAck(t, line); ok {
			acks[seq] = msg
		}
	}
	_ = cmd.Wait()

	if !failed {
		t.Fatal("no Append failed under the file size limit")
	}
	if len(acks) != 25 {
		t.Fatalf("child acknowledged %d records, want 25", len(acks))
	}

	_, frames := journalFrames(t, path)
	if len(frames) != 25 {
		t.Fatalf("journal holds %d frames, want 25", len(frames))
	}
	checkAcked(t, path, acks)
}
