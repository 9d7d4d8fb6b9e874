package authz_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentauth/agentauth/agentauth/runs"
)

func TestBudgetIsExactUnderConcurrency(t *testing.T) {
	f := newFixture(t, mustParse(t, reasonPolicy))
	ctx := context.Background()
	root, err := f.m.StartRun(ctx, runs.StartRequest{Sponsor: alice, Agent: "lead", Grants: []string{"read"},
		TTL: time.Hour, Budgets: map[string]int64{"read": 2}})
	if err != nil {
		t.Fatal(err)
	}
	child, err := f.m.Delegate(ctx, runs.DelegateRequest{ParentID: root.ID, Agent: "helper", Grants: []string{"read"}})
	if err != nil {
		t.Fatal(err)
	}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for _, id := range []string{root.ID, child.ID, root.ID, child.ID} {
		wg.Go(func() {
			for range 25 {
				if f.call(id, "fs", "read_file", `{"path":"/data/x"}`).Allowed() {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := allowed.Load(); got != 2 {
		t.Errorf("%d calls allowed across the chain, want the root's budget of 2", got)
	}
}
