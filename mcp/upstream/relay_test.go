package upstream

import (
	"context"
	"testing"
	"time"
)

type ctxKey struct{}

func TestAttributeServerRequest(t *testing.T) {
	calls := inflightCalls{m: map[uint64]*inflight{}}
	background := context.Background()
	if calls.attribute(background) != nil {
		t.Error("a request with no call in flight was attributed")
	}

	first := calls.begin(context.WithValue(background, ctxKey{}, "run-1"), 1, "run-1", nil)
	if got := calls.attribute(background); got != first {
		t.Errorf("the only call in flight was not chosen: %v", got)
	}

	second := calls.begin(context.WithValue(background, ctxKey{}, "run-2"), 2, "run-1", nil)
	if got := calls.attribute(background); got != nil {
		t.Errorf("with two calls in flight, attribute chose %v; want none", got.ctx.Value(ctxKey{}))
	}
	if got := calls.attribute(second.ctx); got != second {
		t.Error("a context carrying its call was not attributed to it")
	}

	calls.end(first)
	if got := calls.attribute(background); got != second {
		t.Error("after a call of the same run ended, the remaining call was not chosen")
	}
	if calls.byToken("agentauth-2") != second || calls.byToken("agentauth-1") != nil {
		t.Error("byToken does not follow begin and end")
	}
}

func TestAttributeWaitsOutOtherRuns(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	calls := inflightCalls{m: map[uint64]*inflight{}, now: func() time.Time { return now }}
	background := context.Background()

	// Run A's call gets its result, and run B's call is then the only one.
	a := calls.begin(background, 1, "run-a", nil)
	calls.end(a)
	b := calls.begin(background, 2, "run-b", nil)
	if got := calls.attribute(background); got != nil {
		t.Error("a message right after another run's call ended was given to run-b")
	}
	if got := calls.attribute(b.ctx); got != b {
		t.Error("a message on run-b's own stream was not given to it")
	}
	now = now.Add(answeredQuiet + time.Second)
	if got := calls.attribute(background); got != b {
		t.Error("once run-a's quiet time was over, run-b's only call was not chosen")
	}
	calls.end(b)

	// Run A's caller goes away; the server may still be working for it.
	ctx, cancel := context.WithCancel(background)
	a = calls.begin(ctx, 3, "run-a", nil)
	cancel()
	calls.end(a)
	b = calls.begin(background, 4, "run-b", nil)
	now = now.Add(answeredQuiet + time.Second)
	if got := calls.attribute(background); got != nil {
		t.Error("a message soon after another run's abandoned call was given to run-b")
	}
	now = now.Add(abandonedQuiet)
	if got := calls.attribute(background); got != b {
		t.Error("after the abandoned call's quiet time, run-b's only call was not chosen")
	}
	calls.end(b)

	// Run A's call fails; the server may go on with the work behind it.
	a = calls.begin(background, 5, "run-a", nil)
	a.failed = true
	calls.end(a)
	b = calls.begin(background, 6, "run-b", nil)
	now = now.Add(answeredQuiet + time.Second)
	if got := calls.attribute(background); got != nil {
		t.Error("a message soon after another run's failed call was given to run-b")
	}
	now = now.Add(abandonedQuiet)
	if got := calls.attribute(background); got != b {
		t.Error("after the failed call's quiet time, run-b's only call was not chosen")
	}
}

func TestAttributeWhenRunsOverflow(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	calls := inflightCalls{m: map[uint64]*inflight{}, now: func() time.Time { return now }}
	background := context.Background()
	for i := range maxQuietRuns + 1 {
		calls.end(calls.begin(background, uint64(i), "run-"+time.Duration(i).String(), nil))
	}
	if len(calls.quiet) > maxQuietRuns {
		t.Errorf("%d runs remembered, want at most %d", len(calls.quiet), maxQuietRuns)
	}
	only := calls.begin(background, 1<<20, "run-x", nil)
	now = now.Add(answeredQuiet - time.Second)
	if got := calls.attribute(background); got != nil {
		t.Error("a message was attributed while a forgotten run's quiet time lasted")
	}
	now = now.Add(2 * time.Second)
	if got := calls.attribute(background); got != only {
		t.Error("once every quiet time was over, the only call was not chosen")
	}
}
