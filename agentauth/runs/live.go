package runs

import (
	"sync/atomic"
	"time"

	"github.com/agentauth/agentauth/agentauth/policy"
)

// Live is the in-memory state of one run that the authorizer reads on
// every call. Its methods are safe for concurrent use.
type Live struct {
	run     Run // immutable after start, except Status fields, which are guarded by Manager.mu
	parent  *Live
	sponsor *sponsorState
	chain   []policy.Hop
	revoked atomic.Bool
	view    atomic.Pointer[view]
	budgets map[string]*budget // fixed at start
	// children counts direct child runs ever started, guarded by Manager.mu.
	children int
}

type sponsorState struct {
	inactive atomic.Bool
}

type budget struct {
	limit int64 // 0: no cap
	used  atomic.Int64
	dirty atomic.Bool
}

// ID returns the run id.
func (l *Live) ID() string { return l.run.ID }

// Agent returns the run's agent name.
func (l *Live) Agent() string { return l.run.Agent }

// SPIFFEID returns the run's SPIFFE ID.
func (l *Live) SPIFFEID() string { return l.run.SPIFFEID }

// Sponsor returns the human behind the run.
func (l *Live) Sponsor() *Sponsor { return &l.run.Sponsor }

// Parent returns the parent run, or nil for a root run.
func (l *Live) Parent() *Live { return l.parent }

// Depth returns the run's depth in its chain; a root run has depth 0.
func (l *Live) Depth() int { return l.run.Depth }

// Created returns when the run started.
func (l *Live) Created() time.Time { return l.run.Created }

// Expiry returns when the run expires.
func (l *Live) Expiry() time.Time { return l.run.Expiry }

// Purpose returns the purpose the sponsor gave.
func (l *Live) Purpose() string { return l.run.Purpose }

// BreakGlass reports whether this is a break-glass run.
func (l *Live) BreakGlass() bool { return l.run.BreakGlass }

// Chain returns the delegation chain from the root run to this one. The
// slice is shared: callers must not modify it.
func (l *Live) Chain() []policy.Hop { return l.chain }

// Revoked reports whether the run was revoked.
func (l *Live) Revoked() bool { return l.revoked.Load() }

// SponsorActive reports whether the run's sponsor is active.
func (l *Live) SponsorActive() bool { return !l.sponsor.inactive.Load() }

// Policy returns the policy the run's effective grants were computed under.
func (l *Live) Policy() *policy.Policy { return l.view.Load().policy }

// DepthAllowed reports whether every agent above this run still allows a
// chain this deep under the current policy.
func (l *Live) DepthAllowed() bool { return l.view.Load().depthOK }

// Match returns the run's effective grants that cover the target, in
// preference order: grants needing no approval first, then by id. The
// slice is shared: callers must not modify it.
func (l *Live) Match(kind, server, name string) []*policy.Grant {
	return l.view.Load().match(kind, server, name)
}

// Holds reports whether the run's effective grants include the grant.
func (l *Live) Holds(grantID string) bool { return l.view.Load().grants[grantID] != nil }

// Uncovered returns the first operation the grant covers that none of the
// run's effective grants covers, or "" when the run covers all of it.
func (l *Live) Uncovered(g *policy.Grant) string { return l.view.Load().uncovered(g) }

// Calls returns how many calls the run has made under the grant.
func (l *Live) Calls(grantID string) int64 {
	if b := l.budgets[grantID]; b != nil {
		return b.used.Load()
	}
	return 0
}

// Consume counts one call under the grant against this run and every
// ancestor, atomically per counter. It returns false, counting nothing,
// when any of them has no budget left.
func (l *Live) Consume(grantID string) bool {
	for hop := l; hop != nil; hop = hop.parent {
		if !hop.budgets[grantID].take() {
			for undo := l; undo != hop; undo = undo.parent {
				undo.budgets[grantID].give()
			}
			return false
		}
	}
	return true
}

// Use is one grant of one run that a call is counted against.
type Use struct {
	Live  *Live
	Grant *policy.Grant
}

// ConsumeAll counts one call against every use, atomically per counter.
// It returns false, counting nothing, when any of them has no budget left.
func ConsumeAll(uses []Use) bool {
	for i, u := range uses {
		if !u.Live.budgets[u.Grant.ID].take() {
			for _, undo := range uses[:i] {
				undo.Live.budgets[undo.Grant.ID].give()
			}
			return false
		}
	}
	return true
}

// Exhausted reports whether any use has no budget left.
func Exhausted(uses []Use) bool {
	for _, u := range uses {
		if b := u.Live.budgets[u.Grant.ID]; b != nil && b.limit > 0 && b.used.Load() >= b.limit {
			return true
		}
	}
	return false
}

// Remaining returns how many calls the run may still make under the grant
// counting its ancestors' budgets, or -1 when no budget caps it.
func (l *Live) Remaining(grantID string) int64 {
	left := int64(-1)
	for hop := l; hop != nil; hop = hop.parent {
		b := hop.budgets[grantID]
		if b == nil || b.limit == 0 {
			continue
		}
		r := max(b.limit-b.used.Load(), 0)
		if left < 0 || r < left {
			left = r
		}
	}
	return left
}

func (b *budget) take() bool {
	if b == nil {
		return true
	}
	for {
		u := b.used.Load()
		if b.limit > 0 && u >= b.limit {
			return false
		}
		if b.used.CompareAndSwap(u, u+1) {
			b.dirty.Store(true)
			return true
		}
	}
}

func (b *budget) give() {
	if b != nil {
		b.used.Add(-1)
		b.dirty.Store(true)
	}
}
