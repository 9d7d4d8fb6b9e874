package audit

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestCloseDuringAppends closes the log while 8 goroutines append.
// Every Append that returned success must be stored after a reopen.
func TestCloseDuringAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var wg sync.WaitGroup
	acks := map[uint64]string{}
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				rec := decisionRecord(i)
				rec.Message = fmt.Sprintf("w%d-%d", w, i)
				seq, err := l.Append(context.Background(), rec)
				if err != nil {
					return
				}
				mu.Lock()
				acks[seq] = rec.Message
				mu.Unlock()
			}
		})
	}
	time.Sleep(30 * time.Millisecond)
	if err := l.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	wg.Wait()

	if len(acks) == 0 {
		t.Fatal("no Append succeeded before Close")
	}
	checkAcked(t, path, acks)
}
