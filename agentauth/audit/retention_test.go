package audit

import (
	"context"
	"sync"
	"testing"
	"time"
)

// appendAt appends n records dated at, from up to 64 goroutines so that
// they share commits.
func appendAt(t *testing.T, l *Log, at time.Time, n int) {
	t.Helper()
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(n, 64) {
		wg.Go(func() {
			for i := range next {
				rec := decisionRecord(i)
				rec.Time = at
				if _, err := l.Append(context.Background(), rec); err != nil {
					t.Error(err)
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

func TestPruneKeepsChainVerifiable(t *testing.T) {
	l := openTest(t)
	ctx := context.Background()
	now := time.Now()
	appendAt(t, l, now.Add(-48*time.Hour), 10)
	appendAt(t, l, now, 5)

	n, err := l.Prune(ctx, now.Add(-24*time.Hour))
	if err != nil || n != 10 {
		t.Fatalf("Prune = %d, %v; want 10", n, err)
	}
	rep, err := l.Verify(ctx)
	if err != nil {
		t.Fatalf("Verify after prune: %v", err)
	}
	if rep.AnchorSeq != 10 || rep.Records != 5 || rep.HeadSeq != 15 {
		t.Errorf("report = %+v; want anchor 10, 5 records, head 15", rep)
	}
	recs, err := l.Query(ctx, Filter{})
	if err != nil || len(recs) != 5 || recs[0].Seq != 11 || recs[0].PrevHash != rep.AnchorHash {
		t.Fatalf("kept records = %d (%v); want seq 11 linked to the anchor", len(recs), err)
	}
	if seq, err := l.Append(ctx, decisionRecord(1)); err != nil || seq != 16 {
		t.Fatalf("Append after prune = %d, %v", seq, err)
	}
	if _, err := l.Verify(ctx); err != nil {
		t.Errorf("Verify after append: %v", err)
	}
}

func TestPruneEverything(t *testing.T) {
	l := openTest(t)
	ctx := context.Background()
	appendAt(t, l, time.Now().Add(-time.Hour), 3)
	if n, err := l.Prune(ctx, time.Now()); err != nil || n != 3 {
		t.Fatalf("Prune = %d, %v", n, err)
	}
	rep, err := l.Verify(ctx)
	if err != nil || rep.Records != 0 || rep.AnchorSeq != 3 || rep.AnchorHash != rep.HeadHash {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	if seq, err := l.Append(ctx, decisionRecord(1)); err != nil || seq != 4 {
		t.Fatalf("Append = %d, %v", seq, err)
	}
	if _, err := l.Verify(ctx); err != nil {
		t.Error(err)
	}
}

func TestPruneInChunks(t *testing.T) {
	l := openTest(t)
	ctx := context.Background()
	appendAt(t, l, time.Now().Add(-time.Hour), pruneChunk+7)
	appendAt(t, l, time.Now().Add(time.Hour), 1)
	n, err := l.Prune(ctx, time.Now())
	if err != nil || n != pruneChunk+7 {
		t.Fatalf("Prune = %d, %v", n, err)
	}
	if _, err := l.Verify(ctx); err != nil {
		t.Error(err)
	}
}

func TestPruneStopsAtTamperedRecord(t *testing.T) {
	path, _ := tamperFixture(t)
	tamper(t, path,
		`UPDATE records SET time_ns = 0`,
		`UPDATE records SET record = CAST(replace(CAST(record AS TEXT), '"effect":"allow"', '"effect":"deny"') AS BLOB) WHERE seq = 2`)
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Prune(context.Background(), time.Now()); err == nil {
		t.Fatal("Prune deleted records that fail verification")
	}
	recs, err := l.Query(context.Background(), Filter{})
	if err != nil || len(recs) != 5 {
		t.Errorf("records left = %d, %v; want all 5", len(recs), err)
	}
}

func TestRetentionPrunesPeriodically(t *testing.T) {
	l := openTest(t, WithRetention(time.Hour, 20*time.Millisecond))
	ctx := context.Background()
	appendAt(t, l, time.Now().Add(-2*time.Hour), 4)
	appendAt(t, l, time.Now(), 1)
	deadline := time.Now().Add(10 * time.Second)
	for {
		rep, err := l.Verify(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rep.AnchorSeq == 4 && rep.Records == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("retention did not prune: %+v", rep)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
