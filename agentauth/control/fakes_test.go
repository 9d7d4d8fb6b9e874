package control

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agentauth/agentauth/agentauth/control/api"
)

// memRuns is an in-memory run and approval service for unit tests of the
// control API; the run service has its own tests.
type memRuns struct {
	td spiffeid.TrustDomain

	mu          sync.Mutex
	n           int
	runs        map[string]api.Run
	approvals   map[string]api.Approval
	deactivated []string
	breakGlass  []string
}

func newMemRuns(td spiffeid.TrustDomain) *memRuns {
	return &memRuns{td: td, runs: map[string]api.Run{}, approvals: map[string]api.Approval{}}
}

func (m *memRuns) newRun(sp api.Sponsor, parent string, req RunRequest) api.Run {
	m.n++
	id := fmt.Sprintf("01RUN%05d", m.n)
	ttl := req.TTL
	if ttl == 0 {
		ttl = time.Hour
	}
	sid, _ := RunSPIFFEID(m.td, req.Agent, id)
	r := api.Run{ID: id, SPIFFEID: sid.String(), Agent: req.Agent, ParentID: parent, Sponsor: sp,
		Grants: req.Grants, Purpose: req.Purpose, Status: RunActive, CreatedAt: time.Now(),
		ExpiresAt: time.Now().Add(ttl)}
	if p, ok := m.runs[parent]; ok {
		r.Chain = append(slices.Clone(p.Chain), api.Hop{RunID: id, Agent: req.Agent, SPIFFEID: r.SPIFFEID})
	} else {
		r.Chain = []api.Hop{{RunID: id, Agent: req.Agent, SPIFFEID: r.SPIFFEID}}
	}
	m.runs[id] = r
	return r
}

func (m *memRuns) StartRun(_ context.Context, sp api.Sponsor, req RunRequest) (api.Run, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if req.Agent == "forbidden" {
		return api.Run{}, fmt.Errorf("grant %q is not in the entitlements of %s: %w", req.Grants[0], sp, ErrNotEntitled)
	}
	return m.newRun(sp, "", req), nil
}

func (m *memRuns) Delegate(_ context.Context, parent string, req RunRequest) (api.Run, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.runs[parent]
	if !ok || p.Status != RunActive {
		return api.Run{}, fmt.Errorf("run %s is not active: %w", parent, ErrForbidden)
	}
	for _, g := range req.Grants {
		if !slices.Contains(p.Grants, g) {
			return api.Run{}, fmt.Errorf("grant %q is not held by run %s: %w", g, parent, ErrForbidden)
		}
	}
	return m.newRun(p.Sponsor, parent, req), nil
}

func (m *memRuns) GetRun(_ context.Context, id string) (api.Run, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.runs[id]
	if !ok {
		return api.Run{}, fmt.Errorf("run %s: %w", id, ErrNotFound)
	}
	return r, nil
}

func (m *memRuns) ListRuns(_ context.Context, f RunFilter) ([]api.Run, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []api.Run
	for _, r := range m.runs {
		if f.SponsorSubject != "" && (r.Sponsor.Subject != f.SponsorSubject || r.Sponsor.Issuer != f.SponsorIssuer) {
			continue
		}
		if f.Status != "" && r.Status != f.Status {
			continue
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b api.Run) int { return -compareStrings(a.ID, b.ID) })
	return out, nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (m *memRuns) Revoke(_ context.Context, id string, _ api.Sponsor, _ string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.runs[id]
	if !ok {
		return fmt.Errorf("run %s: %w", id, ErrNotFound)
	}
	r.Status = "revoked"
	m.runs[id] = r
	return nil
}

func (m *memRuns) BreakGlass(_ context.Context, by api.Sponsor, grant, agent, reason string, ttl time.Duration) (api.Run, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.breakGlass = append(m.breakGlass, grant)
	return m.newRun(by, "", RunRequest{Agent: agent, Grants: []string{grant}, Purpose: reason, TTL: ttl}), nil
}

func (m *memRuns) DeactivateSponsor(_ context.Context, issuer, subject string, _ api.Sponsor, _ string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.deactivated = append(m.deactivated, subject+"@"+issuer)
	return nil
}

func (m *memRuns) ReactivateSponsor(_ context.Context, issuer, subject string, _ api.Sponsor) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.deactivated = slices.DeleteFunc(m.deactivated, func(s string) bool { return s == subject+"@"+issuer })
	return nil
}

func (m *memRuns) addApproval(a api.Approval) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.approvals[a.ID] = a
}

func (m *memRuns) ListApprovals(_ context.Context, _ api.Sponsor, status string) ([]api.Approval, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if status == "" {
		status = "pending"
	}
	var out []api.Approval
	for _, a := range m.approvals {
		if a.Status == status {
			out = append(out, a)
		}
	}
	return out, nil
}

func (m *memRuns) GetApproval(_ context.Context, id string) (api.Approval, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.approvals[id]
	if !ok {
		return api.Approval{}, fmt.Errorf("approval %s: %w", id, ErrNotFound)
	}
	return a, nil
}

func (m *memRuns) decide(id string, by api.Sponsor, comment, status string) (api.Approval, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.approvals[id]
	if !ok {
		return api.Approval{}, fmt.Errorf("approval %s: %w", id, ErrNotFound)
	}
	// Like a policy role: members of sec-approvers other than the sponsor.
	if !slices.Contains(by.Groups, "sec-approvers") || by.Subject == a.Sponsor.Subject {
		return api.Approval{}, fmt.Errorf("%s may not decide approval %s: %w", by, id, ErrForbidden)
	}
	if a.Status != "pending" {
		return api.Approval{}, fmt.Errorf("approval %s is already %s: %w", id, a.Status, ErrConflict)
	}
	a.Status, a.DecidedBy, a.Comment = status, &by, comment
	m.approvals[id] = a
	return a, nil
}

func (m *memRuns) Approve(_ context.Context, id string, by api.Sponsor, comment string) (api.Approval, error) {
	return m.decide(id, by, comment, "approved")
}

func (m *memRuns) Deny(_ context.Context, id string, by api.Sponsor, comment string) (api.Approval, error) {
	return m.decide(id, by, comment, "denied")
}
