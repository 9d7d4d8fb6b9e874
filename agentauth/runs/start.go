package runs

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/agentauth/agentauth/agentauth/policy"
)

// MaxPurposeBytes caps the length of a run's purpose and of reasons and
// comments people type.
const MaxPurposeBytes = 1024

// StartRequest is a request for a new root run.
type StartRequest struct {
	Sponsor Sponsor
	Agent   string
	Grants  []string
	Purpose string
	// TTL is the run's lifetime; zero means DefaultRunTTL.
	TTL time.Duration
	// Budgets optionally caps calls per grant below what the grant allows.
	Budgets map[string]int64
}

// DelegateRequest is a request from a run to start a child run for
// another agent.
type DelegateRequest struct {
	ParentID string
	Agent    string
	Grants   []string
	Purpose  string
	// TTL is the child's lifetime; zero means whatever the parent has left.
	TTL     time.Duration
	Budgets map[string]int64
}

// StartRun starts a run for a sponsor. Every requested grant must be
// within the sponsor's entitlements for the agent.
func (m *Manager) StartRun(ctx context.Context, req StartRequest) (Run, error) {
	now := m.now()
	m.mu.Lock()
	r, err := m.checkStart(req, now)
	var l *Live
	if err == nil {
		if err = m.store.InsertRun(ctx, r); err == nil {
			l = m.addLocked(r, nil)
		}
	}
	m.mu.Unlock()
	if err != nil {
		m.record(ctx, Event{Type: EventRunStartRejected, Actor: &req.Sponsor, Sponsor: &req.Sponsor,
			Agent: req.Agent, GrantIDs: req.Grants, Message: err.Error()})
		return Run{}, err
	}
	m.log.Info("run started", "run", r.ID, "agent", r.Agent, "sponsor", r.Sponsor.Name())
	m.record(ctx, Event{Type: EventRunStarted, Actor: &req.Sponsor, Sponsor: &req.Sponsor,
		RunID: r.ID, Agent: r.Agent, SPIFFEID: r.SPIFFEID, GrantIDs: r.Grants, Message: r.Purpose})
	return l.run, nil
}

func (m *Manager) checkStart(req StartRequest, now time.Time) (Run, error) {
	p := m.policy
	if err := checkCommon(req.Sponsor, req.Agent, req.Grants, req.Purpose); err != nil {
		return Run{}, err
	}
	if m.sponsorLocked(req.Sponsor.Key()).inactive.Load() {
		return Run{}, newError(ErrInactive, fmt.Sprintf("sponsor %s is deactivated; "+
			"ask an admin to reactivate them", req.Sponsor.Name()))
	}
	if p.Agents[req.Agent] == nil {
		return Run{}, newError(ErrNotFound, fmt.Sprintf("agent %q is not declared in the policy", req.Agent))
	}
	for _, g := range req.Grants {
		if err := checkEntitled(p, req.Sponsor, req.Agent, g); err != nil {
			return Run{}, err
		}
	}
	ttl, err := runTTL(p, req.Grants, req.TTL, MaxRunTTL)
	if err != nil {
		return Run{}, err
	}
	budgets, err := budgetsFor(p, req.Grants, req.Budgets, nil)
	if err != nil {
		return Run{}, err
	}
	return m.newRun(req.Sponsor, req.Agent, req.Grants, req.Purpose, now, now.Add(ttl), budgets), nil
}

func checkCommon(s Sponsor, agent string, grants []string, purpose string) error {
	switch {
	case s.Issuer == "" || s.Subject == "":
		return newError(ErrInvalid, "sponsor issuer and subject are required")
	case isWorkload(s):
		return newError(ErrForbidden, fmt.Sprintf("sponsor %q is a SPIFFE ID; only a human can sponsor a run "+
			"or break glass", s.Subject))
	case agent == "":
		return newError(ErrInvalid, "agent is required")
	case len(grants) == 0:
		return newError(ErrInvalid, "at least one grant is required")
	case len(purpose) > MaxPurposeBytes:
		return newError(ErrInvalid, fmt.Sprintf("purpose is %d bytes, over the limit of %d", len(purpose), MaxPurposeBytes))
	}
	seen := map[string]bool{}
	for _, g := range grants {
		if seen[g] {
			return newError(ErrInvalid, fmt.Sprintf("grant %q is requested twice", g))
		}
		seen[g] = true
	}
	return nil
}

func checkEntitled(p *policy.Policy, s Sponsor, agent, grantID string) error {
	g := p.Grants[grantID]
	switch {
	case g == nil:
		return newError(ErrNotFound, fmt.Sprintf("grant %q is not declared in the policy", grantID))
	case g.BreakGlass != nil:
		return newError(ErrNotEntitled, fmt.Sprintf("grant %q is a break-glass grant; "+
			"take it with break-glass and a reason instead", grantID))
	case !p.Agents[agent].MayHold(grantID):
		return newError(ErrNotEntitled, fmt.Sprintf("agent %s may not hold grant %q; "+
			"ask an admin to add it to the agent's grants in the policy", agent, grantID))
	case !p.Entitled(s.Identity(), agent, grantID):
		return newError(ErrNotEntitled, fmt.Sprintf("grant %q is not in the entitlements of sponsor %s "+
			"for agent %s; ask an admin to add it to the policy", grantID, s.Name(), agent))
	}
	return nil
}

// runTTL applies the default and checks the TTL against each grant's
// lifetime cap and the overall maximum.
func runTTL(p *policy.Policy, grants []string, ttl, maxTTL time.Duration) (time.Duration, error) {
	if ttl < 0 {
		return 0, newError(ErrInvalid, fmt.Sprintf("ttl %s is negative", ttl))
	}
	if ttl == 0 {
		ttl = min(DefaultRunTTL, maxTTL)
		for _, id := range grants {
			if g := p.Grants[id]; g != nil && g.MaxLifetime > 0 {
				ttl = min(ttl, g.MaxLifetime)
			}
		}
	}
	if ttl > maxTTL {
		return 0, newError(ErrInvalid, fmt.Sprintf("ttl %s is over the maximum of %s", ttl, maxTTL))
	}
	for _, id := range grants {
		if g := p.Grants[id]; g != nil && g.MaxLifetime > 0 && ttl > g.MaxLifetime {
			return 0, newError(ErrInvalid, fmt.Sprintf("ttl %s is over the %s lifetime cap of grant %q; "+
				"ask for a shorter ttl", ttl, g.MaxLifetime, id))
		}
	}
	return ttl, nil
}

// budgetsFor returns each grant's call cap: the grant's budget, lowered
// to the requested cap and to what the parent has left.
func budgetsFor(p *policy.Policy, grants []string, asked map[string]int64, parent *Live) (map[string]int64, error) {
	out := map[string]int64{}
	for id, n := range asked {
		if !slices.Contains(grants, id) || n <= 0 {
			return nil, newError(ErrInvalid, fmt.Sprintf("budget for %q must be positive and for a requested grant", id))
		}
	}
	for _, id := range grants {
		limit := p.Grants[id].Budget
		if n, ok := asked[id]; ok && (limit == 0 || n < limit) {
			limit = n
		}
		if parent != nil && parent.Holds(id) {
			left := parent.Remaining(id)
			if left == 0 {
				return nil, newError(ErrEscalation, fmt.Sprintf("grant %q has no budget left in the parent run", id))
			}
			if left > 0 && (limit == 0 || left < limit) {
				limit = left
			}
		}
		if limit > 0 {
			out[id] = limit
		}
	}
	return out, nil
}

func (m *Manager) newRun(s Sponsor, agent string, grants []string, purpose string,
	now, expiry time.Time, budgets map[string]int64) Run {
	id := ulid.MustNew(ulid.Timestamp(now), rand.Reader).String()
	return Run{
		ID: id, Agent: agent, SPIFFEID: RunSPIFFEID(m.td, agent, id), Sponsor: s,
		Purpose: purpose, Grants: slices.Clone(grants), Budgets: budgets,
		Created: now, Expiry: expiry, Status: StatusActive,
	}
}

// RunSPIFFEID returns the SPIFFE ID of a run.
func RunSPIFFEID(trustDomain, agent, runID string) string {
	return "spiffe://" + trustDomain + "/agents/" + agent + "/runs/" + runID
}

// Delegate starts a child run of a live run. Every operation a child's
// grant covers must be covered by a grant the parent holds now, and a
// call of the child must also pass the parent's covering grant, so the
// conditions AND. The child's expiry and budgets never exceed what the
// parent has left, and depth and fan-out stay within every agent's limits. A request that would widen authority is rejected with an error
// wrapping ErrEscalation and reported to the Recorder.
func (m *Manager) Delegate(ctx context.Context, req DelegateRequest) (Run, error) {
	now := m.now()
	m.mu.Lock()
	r, parent, err := m.checkDelegate(req, now)
	var l *Live
	if err == nil {
		if err = m.store.InsertRun(ctx, r); err == nil {
			l = m.addLocked(r, parent)
		}
	}
	m.mu.Unlock()
	if err != nil {
		ev := Event{Type: EventRunStartRejected, ParentID: req.ParentID, Agent: req.Agent,
			GrantIDs: req.Grants, Message: err.Error()}
		if parent != nil {
			ev.Sponsor = &parent.run.Sponsor
		}
		if isEscalation(err) {
			ev.Type = EventEscalationRejected
			m.log.Warn("delegation escalation rejected", "parent", req.ParentID, "agent", req.Agent, "error", err)
		}
		m.record(ctx, ev)
		return Run{}, err
	}
	m.log.Info("run delegated", "run", r.ID, "parent", r.ParentID, "agent", r.Agent)
	m.record(ctx, Event{Type: EventRunDelegated, Sponsor: &r.Sponsor, RunID: r.ID, ParentID: r.ParentID,
		Agent: r.Agent, SPIFFEID: r.SPIFFEID, GrantIDs: r.Grants, Message: r.Purpose})
	return l.run, nil
}

func isEscalation(err error) bool {
	e, ok := err.(*Error)
	return ok && e.Code == ErrEscalation.Code
}

func (m *Manager) checkDelegate(req DelegateRequest, now time.Time) (Run, *Live, error) {
	parent := m.runs[req.ParentID]
	if parent == nil {
		return Run{}, nil, newError(ErrNotFound, fmt.Sprintf("run %q not found", req.ParentID))
	}
	if err := m.checkLive(parent, now); err != nil {
		return Run{}, parent, err
	}
	if parent.run.BreakGlass {
		return Run{}, parent, newError(ErrEscalation, "a break-glass run cannot delegate; "+
			"the human who took it must act directly")
	}
	if err := checkCommon(parent.run.Sponsor, req.Agent, req.Grants, req.Purpose); err != nil {
		return Run{}, parent, err
	}
	p := m.policy
	if p.Agents[req.Agent] == nil {
		return Run{}, parent, newError(ErrNotFound, fmt.Sprintf("agent %q is not declared in the policy", req.Agent))
	}
	if err := m.checkShape(p, parent); err != nil {
		return Run{}, parent, err
	}
	if err := checkChildGrants(p, parent, req); err != nil {
		return Run{}, parent, err
	}
	left := parent.run.Expiry.Sub(now)
	if req.TTL > left {
		return Run{}, parent, newError(ErrEscalation, fmt.Sprintf("ttl %s is longer than the %s parent run %s "+
			"has left; a child run cannot outlive its parent", req.TTL, left.Round(time.Second), parent.run.ID))
	}
	ttl, err := runTTL(p, req.Grants, req.TTL, left)
	if err != nil {
		return Run{}, parent, err
	}
	budgets, err := budgetsFor(p, req.Grants, req.Budgets, parent)
	if err != nil {
		return Run{}, parent, err
	}
	r := m.newRun(parent.run.Sponsor, req.Agent, req.Grants, req.Purpose, now, now.Add(ttl), budgets)
	r.ParentID, r.Depth = parent.run.ID, parent.run.Depth+1
	return r, parent, nil
}

// checkChildGrants checks that every grant of a child run narrows what
// the parent holds and that the sponsor may hand it to the child's agent.
func checkChildGrants(p *policy.Policy, parent *Live, req DelegateRequest) error {
	for _, g := range req.Grants {
		grant := p.Grants[g]
		if grant == nil {
			return newError(ErrNotFound, fmt.Sprintf("grant %q is not declared in the policy", g))
		}
		if miss := parent.Uncovered(grant); miss != "" {
			return newError(ErrEscalation, fmt.Sprintf("grant %q covers %s, which parent run %s "+
				"does not hold; a child run can only narrow what its parent holds", g, miss, parent.run.ID))
		}
		if err := checkEntitled(p, parent.run.Sponsor, req.Agent, g); err != nil {
			return &Error{Code: ErrEscalation.Code, Msg: err.Error()}
		}
	}
	return nil
}

// checkShape checks depth against every ancestor's agent and the parent's
// fan-out.
func (m *Manager) checkShape(p *policy.Policy, parent *Live) error {
	depth := parent.run.Depth + 1
	for a := parent; a != nil; a = a.parent {
		agent := p.Agents[a.run.Agent]
		if agent == nil || depth-a.run.Depth > agent.MaxDelegationDepth {
			return newError(ErrEscalation, fmt.Sprintf("a child run at depth %d exceeds max_delegation_depth "+
				"of agent %s (run %s)", depth, a.run.Agent, a.run.ID))
		}
	}
	agent := p.Agents[parent.run.Agent]
	if parent.children >= agent.MaxFanOut {
		return newError(ErrEscalation, fmt.Sprintf("run %s already started %d child runs, the max_fan_out "+
			"of agent %s", parent.run.ID, parent.children, agent.Name))
	}
	return nil
}

// checkLive returns an error unless the run and its whole chain are live.
func (m *Manager) checkLive(l *Live, now time.Time) error {
	for hop := l; hop != nil; hop = hop.parent {
		switch {
		case hop.revoked.Load():
			return newError(ErrInactive, fmt.Sprintf("run %s is revoked", hop.run.ID))
		case !now.Before(hop.run.Expiry):
			return newError(ErrInactive, fmt.Sprintf("run %s expired at %s", hop.run.ID,
				hop.run.Expiry.UTC().Format(time.RFC3339)))
		}
	}
	if l.sponsor.inactive.Load() {
		return newError(ErrInactive, fmt.Sprintf("sponsor %s is deactivated", l.run.Sponsor.Name()))
	}
	return nil
}

// isWorkload reports whether an identity is a workload's SPIFFE ID rather
// than a human: a sponsor or approver is never a SPIFFE ID.
func isWorkload(s Sponsor) bool {
	return strings.HasPrefix(s.Subject, "spiffe://") || strings.HasPrefix(s.Issuer, "spiffe://")
}
