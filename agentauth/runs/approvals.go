package runs

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/agentauth/agentauth/agentauth/policy"
)

// pendingApproval is an approval in memory with a channel closed when a
// human decides it.
type pendingApproval struct {
	a    Approval
	done chan struct{}
}

// approvalKey identifies the call an approval is for.
type approvalKey struct {
	run, grant, kind, server, name, digest string
}

func keyOf(a *Approval) approvalKey {
	return approvalKey{run: a.RunID, grant: a.GrantID, kind: a.Kind, server: a.Server, name: a.Name,
		digest: a.ArgsDigest}
}

// ApprovalCall names the call an approval is requested for.
type ApprovalCall struct {
	Live   *Live
	Grant  *policy.Grant
	Kind   string
	Server string
	Name   string
	// Args is the exact argument JSON.
	Args []byte
}

// RequestApproval returns the id of a pending approval for the call,
// reusing one already pending for the same run, grant, target and
// arguments, or creating one.
func (m *Manager) RequestApproval(ctx context.Context, c ApprovalCall) (string, error) {
	now := m.now()
	digest := ArgsDigest(c.Args)
	m.mu.Lock()
	key := approvalKey{run: c.Live.run.ID, grant: c.Grant.ID, kind: c.Kind, server: c.Server,
		name: c.Name, digest: digest}
	if id, ok := m.pending[key]; ok && m.approvals[id].a.StatusAt(now) == ApprovalPending {
		m.mu.Unlock()
		return id, nil
	}
	a := Approval{
		ID: ulid.MustNew(ulid.Timestamp(now), rand.Reader).String(), RunID: c.Live.run.ID,
		GrantID: c.Grant.ID, Kind: c.Kind, Server: c.Server, Name: c.Name, ArgsDigest: digest,
		Approver: c.Grant.Approval.Approver, Sponsor: c.Live.run.Sponsor, Status: ApprovalPending,
		Requested: now, Expires: now.Add(m.approval),
	}
	err := m.store.PutApproval(ctx, a)
	if err == nil {
		m.approvals[a.ID] = &pendingApproval{a: a, done: make(chan struct{})}
		m.pending[key] = a.ID
	}
	m.mu.Unlock()
	if err != nil {
		return "", fmt.Errorf("runs: store approval request: %w", err)
	}
	m.record(ctx, Event{Type: EventApprovalRequested, Sponsor: &a.Sponsor, RunID: a.RunID,
		Agent: c.Live.run.Agent, SPIFFEID: c.Live.run.SPIFFEID, GrantIDs: []string{a.GrantID},
		ApprovalID: a.ID, Message: a.Kind + " " + a.Server + "/" + a.Name})
	return a.ID, nil
}

// UseApproval checks that the approval was granted for exactly this call
// and marks it used, so it lets one call through: ok is true only for
// that one use. Otherwise status gives the reason (pending, denied, used or
// expired), or the error wraps ErrNotFound, or ErrConflict when the
// approval was given for another call.
func (m *Manager) UseApproval(ctx context.Context, id string, c ApprovalCall) (ok bool, status ApprovalStatus, err error) {
	m.mu.Lock()
	a, used, status, err := m.useLocked(ctx, id, c, m.now())
	m.mu.Unlock()
	if err != nil || !used {
		return false, status, err
	}
	m.record(ctx, Event{Type: EventApprovalUsed, Sponsor: &a.Sponsor, RunID: a.RunID,
		GrantIDs: []string{a.GrantID}, ApprovalID: a.ID})
	return true, status, nil
}

// useLocked reports used only when this call consumed the approval.
//
// NOTE: single use is enforced in this process's memory; two gateway
// processes sharing one database could each use the same approval once.
func (m *Manager) useLocked(ctx context.Context, id string, c ApprovalCall,
	now time.Time) (a Approval, used bool, st ApprovalStatus, err error) {
	p := m.approvals[id]
	if p == nil {
		return a, false, "", newError(ErrNotFound, fmt.Sprintf("approval %q not found", id))
	}
	a = p.a
	if a.RunID != c.Live.run.ID || a.GrantID != c.Grant.ID || a.Kind != c.Kind ||
		a.Server != c.Server || a.Name != c.Name || a.ArgsDigest != ArgsDigest(c.Args) {
		return a, false, "", newError(ErrConflict, fmt.Sprintf("approval %q was given for another call", id))
	}
	if st = a.StatusAt(now); st != ApprovalApproved {
		return a, false, st, nil
	}
	a.Status, a.Used = ApprovalUsed, now
	if err := m.store.PutApproval(ctx, a); err != nil {
		return a, false, "", fmt.Errorf("runs: store approval use: %w", err)
	}
	p.a = a
	return a, true, ApprovalUsed, nil
}

// Approve records a human's approval of a pending request. Only the
// run's sponsor may approve when the grant's approver is "sponsor". When
// the approver is a role, only a member of that role other than the
// sponsor may.
func (m *Manager) Approve(ctx context.Context, approver Sponsor, id, comment string) (Approval, error) {
	return m.decide(ctx, approver, id, comment, ApprovalApproved)
}

// Deny records a human's denial of a pending request.
func (m *Manager) Deny(ctx context.Context, approver Sponsor, id, comment string) (Approval, error) {
	return m.decide(ctx, approver, id, comment, ApprovalDenied)
}

func (m *Manager) decide(ctx context.Context, who Sponsor, id, comment string, to ApprovalStatus) (Approval, error) {
	now := m.now()
	m.mu.Lock()
	a, err := m.decideLocked(ctx, who, id, comment, to, now)
	m.mu.Unlock()
	if err != nil {
		m.record(ctx, Event{Type: EventApprovalRejected, Actor: &who, ApprovalID: id, Message: err.Error()})
		return Approval{}, err
	}
	typ := EventApprovalApproved
	if to == ApprovalDenied {
		typ = EventApprovalDenied
	}
	m.record(ctx, Event{Type: typ, Actor: &who, Sponsor: &a.Sponsor, RunID: a.RunID,
		GrantIDs: []string{a.GrantID}, ApprovalID: a.ID, Message: comment})
	return a, nil
}

func (m *Manager) decideLocked(ctx context.Context, who Sponsor, id, comment string,
	to ApprovalStatus, now time.Time) (Approval, error) {
	if len(comment) > MaxPurposeBytes {
		return Approval{}, newError(ErrInvalid, "comment is over the length limit")
	}
	p := m.approvals[id]
	if p == nil {
		return Approval{}, newError(ErrNotFound, fmt.Sprintf("approval %q not found", id))
	}
	if st := p.a.StatusAt(now); st != ApprovalPending {
		return Approval{}, newError(ErrConflict, fmt.Sprintf("approval %q is %s, not pending", id, st))
	}
	if err := m.mayDecide(who, &p.a); err != nil {
		return Approval{}, err
	}
	d := p.a
	d.Status, d.DecidedBy, d.Comment, d.Decided = to, &who, comment, now
	if err := m.store.PutApproval(ctx, d); err != nil {
		return Approval{}, fmt.Errorf("runs: store approval decision: %w", err)
	}
	p.a = d
	delete(m.pending, keyOf(&d))
	close(p.done)
	return d, nil
}

func (m *Manager) mayDecide(who Sponsor, a *Approval) error {
	if who.Issuer == "" || who.Subject == "" {
		return newError(ErrForbidden, "only an authenticated human may decide an approval")
	}
	if isWorkload(who) {
		return newError(ErrForbidden, "a workload cannot decide an approval; a human must")
	}
	self := who.Key() == a.Sponsor.Key()
	if a.Approver == policy.ApproverSponsor {
		if !self {
			return newError(ErrForbidden, fmt.Sprintf("approval %q must be decided by the run's sponsor %s",
				a.ID, a.Sponsor.Name()))
		}
		return nil
	}
	if self {
		return newError(ErrForbidden, fmt.Sprintf("approval %q needs a member of role %s other than the "+
			"sponsor; the sponsor cannot approve their own run's call", a.ID, a.Approver))
	}
	if !m.policy.HasRole(who.Identity(), a.Approver) {
		return newError(ErrForbidden, fmt.Sprintf("%s is not a member of role %s, which approval %q needs",
			who.Name(), a.Approver, a.ID))
	}
	return nil
}

// WaitApproval blocks until the approval is decided or expires, or ctx is
// done, and returns it as it then is.
func (m *Manager) WaitApproval(ctx context.Context, id string) (Approval, error) {
	m.mu.RLock()
	p := m.approvals[id]
	m.mu.RUnlock()
	if p == nil {
		return Approval{}, newError(ErrNotFound, fmt.Sprintf("approval %q not found", id))
	}
	m.mu.RLock()
	expires := p.a.Expires
	m.mu.RUnlock()
	timer := time.NewTimer(max(expires.Sub(m.now()), 0))
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
	case <-ctx.Done():
		return Approval{}, ctx.Err()
	}
	return m.GetApproval(id)
}

// GetApproval returns an approval from memory with its current status.
func (m *Manager) GetApproval(id string) (Approval, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	p := m.approvals[id]
	if p == nil {
		return Approval{}, newError(ErrNotFound, fmt.Sprintf("approval %q not found", id))
	}
	a := p.a
	a.Status = a.StatusAt(m.now())
	return a, nil
}

// ListApprovals returns approvals from the store, newest first, with
// their current status.
func (m *Manager) ListApprovals(ctx context.Context, f ApprovalFilter) ([]Approval, error) {
	list, err := m.store.ListApprovals(ctx, f)
	if err != nil {
		return nil, err
	}
	now := m.now()
	for i := range list {
		list[i].Status = list[i].StatusAt(now)
	}
	return list, nil
}

// Await blocks until a human decides the approval, it expires, or ctx is
// done. It returns true only when the approval was granted; the call still
// has to present the approval id to Authorize, which uses it once.
func (m *Manager) Await(ctx context.Context, approvalID string) (bool, error) {
	a, err := m.WaitApproval(ctx, approvalID)
	if err != nil {
		return false, err
	}
	return a.Status == ApprovalApproved, nil
}
