package runs

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// BreakGlassRequest is a human taking a break-glass grant for themselves.
type BreakGlassRequest struct {
	// Sponsor is the authenticated human; never an agent.
	Sponsor Sponsor
	Grant   string
	// Agent is the agent the break-glass run is of; the grant lists the
	// agents allowed.
	Agent string
	// Reason is mandatory and recorded with the run.
	Reason string
	// TTL is capped by the grant's break_glass max_lifetime; zero means
	// that cap.
	TTL time.Duration
}

// BreakGlass starts a break-glass run: a run sponsored by the human who
// takes the grant, holding only that grant, flagged in every decision it
// produces. It cannot delegate.
func (m *Manager) BreakGlass(ctx context.Context, req BreakGlassRequest) (Run, error) {
	now := m.now()
	m.mu.Lock()
	r, err := m.checkBreakGlass(req, now)
	var l *Live
	if err == nil {
		if err = m.store.InsertRun(ctx, r); err == nil {
			l = m.addLocked(r, nil)
		}
	}
	m.mu.Unlock()
	if err != nil {
		m.record(ctx, Event{Type: EventBreakGlassRejected, Actor: &req.Sponsor, Sponsor: &req.Sponsor,
			Agent: req.Agent, GrantIDs: []string{req.Grant}, Message: err.Error()})
		return Run{}, err
	}
	m.log.Warn("break-glass run started", "run", r.ID, "grant", req.Grant, "sponsor", r.Sponsor.Name(),
		"expiry", r.Expiry)
	m.record(ctx, Event{Type: EventBreakGlassStarted, Actor: &req.Sponsor, Sponsor: &req.Sponsor,
		RunID: r.ID, Agent: r.Agent, SPIFFEID: r.SPIFFEID, GrantIDs: r.Grants, Message: req.Reason})
	return l.run, nil
}

func (m *Manager) checkBreakGlass(req BreakGlassRequest, now time.Time) (Run, error) {
	if err := checkCommon(req.Sponsor, req.Agent, []string{req.Grant}, req.Reason); err != nil {
		return Run{}, err
	}
	if strings.TrimSpace(req.Reason) == "" {
		return Run{}, newError(ErrInvalid, "a reason is required to break glass")
	}
	if m.sponsorLocked(req.Sponsor.Key()).inactive.Load() {
		return Run{}, newError(ErrInactive, fmt.Sprintf("sponsor %s is deactivated", req.Sponsor.Name()))
	}
	g := m.policy.Grants[req.Grant]
	if g == nil || g.BreakGlass == nil {
		return Run{}, newError(ErrNotFound, fmt.Sprintf("grant %q is not a break-glass grant in the policy", req.Grant))
	}
	if !g.BreakGlass.Sponsors.Matches(req.Sponsor.Identity()) {
		return Run{}, newError(ErrNotEntitled, fmt.Sprintf("sponsor %s may not take break-glass grant %q; "+
			"ask an admin to add them to its break_glass sponsors", req.Sponsor.Name(), req.Grant))
	}
	if !slices.Contains(g.BreakGlass.Agents, req.Agent) {
		return Run{}, newError(ErrNotEntitled, fmt.Sprintf("break-glass grant %q does not allow agent %s",
			req.Grant, req.Agent))
	}
	ttl := req.TTL
	if ttl == 0 {
		ttl = g.BreakGlass.MaxLifetime
	}
	if ttl < 0 || ttl > g.BreakGlass.MaxLifetime {
		return Run{}, newError(ErrInvalid, fmt.Sprintf("ttl %s is outside the break-glass cap of %s for grant %q",
			req.TTL, g.BreakGlass.MaxLifetime, req.Grant))
	}
	budgets := map[string]int64{}
	if g.Budget > 0 {
		budgets[g.ID] = g.Budget
	}
	r := m.newRun(req.Sponsor, req.Agent, []string{req.Grant}, req.Reason, now, now.Add(ttl), budgets)
	r.BreakGlass, r.BreakGlassReason = true, req.Reason
	return r, nil
}
