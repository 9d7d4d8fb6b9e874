package upstream

import (
	"context"
	"testing"
)

type ctxKey struct{}

func TestAttributeServerRequest(t *testing.T) {
	calls := inflightCalls{m: map[uint64]*inflight{}}
	background := context.Background()
	if calls.attribute(background) != nil {
		t.Error("a request with no call in flight was attributed")
	}

	first := calls.begin(context.WithValue(background, ctxKey{}, "run-1"), 1, nil)
	if got := calls.attribute(background); got != first {
		t.Errorf("the only call in flight was not chosen: %v", got)
	}

	second := calls.begin(context.WithValue(background, ctxKey{}, "run-2"), 2, nil)
	if got := calls.attribute(background); got != nil {
		t.Errorf("with two calls in flight, attribute chose %v; want none", got.ctx.Value(ctxKey{}))
	}
	if got := calls.attribute(second.ctx); got != second {
		t.Error("a context carrying its call was not attributed to it")
	}

	calls.end(first)
	if got := calls.attribute(background); got != second {
		t.Error("after one call ended, the remaining call was not chosen")
	}
	if calls.byToken("agentauth-2") != second || calls.byToken("agentauth-1") != nil {
		t.Error("byToken does not follow begin and end")
	}
}
