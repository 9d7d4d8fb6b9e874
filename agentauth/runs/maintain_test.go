package runs_test

import (
	"context"
	"testing"
	"time"
)

func TestMaintainFlushesAndSweeps(t *testing.T) {
	e := newEnv(t)
	r := e.start(t, "read")
	l, _ := e.m.Lookup(r.ID)
	l.Consume("read")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		e.m.Maintain(ctx, 10*time.Millisecond)
		close(done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := e.st.LoadState(context.Background(), e.now)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Budgets) == 1 && st.Budgets[0].Used == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("budget use was not flushed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done

	e.now = e.now.Add(48 * time.Hour)
	ctx, cancel = context.WithCancel(context.Background())
	done = make(chan struct{})
	go func() {
		e.m.Maintain(ctx, 10*time.Millisecond)
		close(done)
	}()
	for {
		if _, ok := e.m.Lookup(r.ID); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("run ended two days ago is still in memory")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if got, err := e.m.GetRun(context.Background(), r.ID); err != nil || got.Status != "expired" {
		t.Errorf("swept run from the store = %+v, %v; want it kept as expired", got.Status, err)
	}
}
