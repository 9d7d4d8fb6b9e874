package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/agentauth/agentauth/agentauth/control/api"
	"github.com/agentauth/agentauth/agentauth/policy"
	"github.com/agentauth/agentauth/agentauth/runs"
)

// ManagerServices serves the control API's Runs and Approvals from a
// runs.Manager: control.New(cfg, control.Deps{Runs: s, Approvals: s, …})
// with s := control.ManagerServices{Manager: m}.
type ManagerServices struct {
	Manager *runs.Manager
	// Arguments returns the exact argument JSON of a pending approval's
	// call, so the approvals page can show it; nil shows only the digest.
	Arguments func(approvalID string) json.RawMessage
}

var (
	_ Runs      = ManagerServices{}
	_ Approvals = ManagerServices{}
)

func toRunsSponsor(s api.Sponsor) runs.Sponsor {
	return runs.Sponsor{Issuer: s.Issuer, Subject: s.Subject, Email: s.Email, Groups: s.Groups}
}

func fromRunsSponsor(s runs.Sponsor) api.Sponsor {
	return api.Sponsor{Issuer: s.Issuer, Subject: s.Subject, Email: s.Email, Groups: s.Groups}
}

func fromRun(r runs.Run) api.Run {
	return api.Run{ID: r.ID, SPIFFEID: r.SPIFFEID, Agent: r.Agent, ParentID: r.ParentID,
		Sponsor: fromRunsSponsor(r.Sponsor), Grants: r.Grants, Purpose: r.Purpose,
		Status: string(r.Status), CreatedAt: r.Created, ExpiresAt: r.Expiry}
}

// mapError wraps a runs error in the matching control sentinel, keeping
// its message, which names the value and the fix.
func mapError(err error) error {
	if err == nil {
		return nil
	}
	for _, m := range []struct{ from, to error }{
		{runs.ErrNotFound, ErrNotFound}, {runs.ErrInvalid, ErrInvalid},
		{runs.ErrNotEntitled, ErrNotEntitled}, {runs.ErrEscalation, ErrForbidden},
		{runs.ErrInactive, ErrForbidden}, {runs.ErrForbidden, ErrForbidden},
		{runs.ErrConflict, ErrConflict},
	} {
		if errors.Is(err, m.from) {
			return &mappedError{msg: err.Error(), kind: m.to}
		}
	}
	return err
}

type mappedError struct {
	msg  string
	kind error
}

func (e *mappedError) Error() string { return e.msg }
func (e *mappedError) Unwrap() error { return e.kind }

// StartRun starts a root run.
func (s ManagerServices) StartRun(ctx context.Context, sp api.Sponsor, req RunRequest) (api.Run, error) {
	r, err := s.Manager.StartRun(ctx, runs.StartRequest{Sponsor: toRunsSponsor(sp), Agent: req.Agent,
		Grants: req.Grants, Purpose: req.Purpose, TTL: req.TTL})
	if err != nil {
		return api.Run{}, mapError(err)
	}
	return s.GetRun(ctx, r.ID)
}

// Delegate starts a child run.
func (s ManagerServices) Delegate(ctx context.Context, parent string, req RunRequest) (api.Run, error) {
	r, err := s.Manager.Delegate(ctx, runs.DelegateRequest{ParentID: parent, Agent: req.Agent,
		Grants: req.Grants, Purpose: req.Purpose, TTL: req.TTL})
	if err != nil {
		return api.Run{}, mapError(err)
	}
	return s.GetRun(ctx, r.ID)
}

// GetRun returns a run with its chain, root first.
func (s ManagerServices) GetRun(ctx context.Context, id string) (api.Run, error) {
	chain, err := s.Manager.GetChain(ctx, id)
	if err != nil {
		return api.Run{}, mapError(err)
	}
	out := fromRun(chain[len(chain)-1])
	for _, r := range chain {
		out.Chain = append(out.Chain, api.Hop{RunID: r.ID, Agent: r.Agent, SPIFFEID: r.SPIFFEID})
	}
	return out, nil
}

// ListRuns lists runs, newest first.
func (s ManagerServices) ListRuns(ctx context.Context, f RunFilter) ([]api.Run, error) {
	rf := runs.RunFilter{Agent: f.Agent, Status: runs.Status(f.Status), Limit: f.Limit}
	if f.SponsorSubject != "" {
		rf.Sponsor = &runs.SponsorKey{Issuer: f.SponsorIssuer, Subject: f.SponsorSubject}
	}
	list, err := s.Manager.ListRuns(ctx, rf)
	if err != nil {
		return nil, mapError(err)
	}
	out := make([]api.Run, 0, len(list))
	for _, r := range list {
		out = append(out, fromRun(r))
	}
	return out, nil
}

// Revoke stops a run and its descendants.
func (s ManagerServices) Revoke(ctx context.Context, id string, by api.Sponsor, reason string) error {
	_, err := s.Manager.Revoke(ctx, toRunsSponsor(by), id, reason)
	return mapError(err)
}

// BreakGlass starts a break-glass run.
func (s ManagerServices) BreakGlass(ctx context.Context, by api.Sponsor, grant, agent, reason string,
	ttl time.Duration) (api.Run, error) {
	r, err := s.Manager.BreakGlass(ctx, runs.BreakGlassRequest{Sponsor: toRunsSponsor(by), Grant: grant,
		Agent: agent, Reason: reason, TTL: ttl})
	if err != nil {
		return api.Run{}, mapError(err)
	}
	return s.GetRun(ctx, r.ID)
}

// DeactivateSponsor offboards a sponsor.
func (s ManagerServices) DeactivateSponsor(ctx context.Context, issuer, subject string, by api.Sponsor,
	reason string) error {
	_, err := s.Manager.DeactivateSponsor(ctx, toRunsSponsor(by),
		runs.SponsorKey{Issuer: issuer, Subject: subject}, reason)
	return mapError(err)
}

// ReactivateSponsor lets a deactivated sponsor start runs again.
func (s ManagerServices) ReactivateSponsor(ctx context.Context, issuer, subject string, by api.Sponsor) error {
	return mapError(s.Manager.ReactivateSponsor(ctx, toRunsSponsor(by),
		runs.SponsorKey{Issuer: issuer, Subject: subject}))
}

// ListApprovals lists the approvals the viewer may decide or that are on
// the viewer's own runs.
func (s ManagerServices) ListApprovals(ctx context.Context, viewer api.Sponsor, status string) ([]api.Approval, error) {
	if status == "" {
		status = string(runs.ApprovalPending)
	}
	list, err := s.Manager.ListApprovals(ctx, runs.ApprovalFilter{Status: runs.ApprovalStatus(status)})
	if err != nil {
		return nil, mapError(err)
	}
	var out []api.Approval
	for _, a := range list {
		if a.Status != runs.ApprovalStatus(status) || !s.mayView(viewer, a) {
			continue
		}
		out = append(out, s.fromApproval(ctx, a))
	}
	return out, nil
}

// mayView mirrors the decision rule of runs: the sponsor decides
// sponsor-approved calls; members of the policy role decide the others.
func (s ManagerServices) mayView(v api.Sponsor, a runs.Approval) bool {
	if v.Issuer == a.Sponsor.Issuer && v.Subject == a.Sponsor.Subject {
		return true
	}
	if a.Approver == policy.ApproverSponsor {
		return false
	}
	return s.Manager.Policy().HasRole(toRunsSponsor(v).Identity(), a.Approver)
}

func (s ManagerServices) fromApproval(ctx context.Context, a runs.Approval) api.Approval {
	out := api.Approval{ID: a.ID, RunID: a.RunID, Sponsor: fromRunsSponsor(a.Sponsor), Server: a.Server,
		Tool: a.Name, Grant: a.GrantID, Approver: a.Approver, ArgsDigest: a.ArgsDigest,
		Status: string(a.Status), CreatedAt: a.Requested, ExpiresAt: a.Expires, Comment: a.Comment}
	if a.DecidedBy != nil {
		d := fromRunsSponsor(*a.DecidedBy)
		out.DecidedBy = &d
	}
	if s.Arguments != nil {
		var args map[string]any
		if raw := s.Arguments(a.ID); raw != nil && json.Unmarshal(raw, &args) == nil {
			out.Arguments = args
		}
	}
	if r, err := s.GetRun(ctx, a.RunID); err == nil {
		out.Chain, out.Purpose = r.Chain, r.Purpose
	}
	return out
}

// GetApproval returns one approval.
func (s ManagerServices) GetApproval(ctx context.Context, id string) (api.Approval, error) {
	a, err := s.Manager.GetApproval(id)
	if err != nil {
		return api.Approval{}, mapError(err)
	}
	return s.fromApproval(ctx, a), nil
}

// Approve records an approval decision.
func (s ManagerServices) Approve(ctx context.Context, id string, by api.Sponsor, comment string) (api.Approval, error) {
	a, err := s.Manager.Approve(ctx, toRunsSponsor(by), id, comment)
	if err != nil {
		return api.Approval{}, mapError(err)
	}
	return s.fromApproval(ctx, a), nil
}

// Deny records a denial.
func (s ManagerServices) Deny(ctx context.Context, id string, by api.Sponsor, comment string) (api.Approval, error) {
	a, err := s.Manager.Deny(ctx, toRunsSponsor(by), id, comment)
	if err != nil {
		return api.Approval{}, mapError(err)
	}
	return s.fromApproval(ctx, a), nil
}

// String names the adapter in logs.
func (s ManagerServices) String() string {
	return fmt.Sprintf("runs.Manager(%s)", s.Manager.TrustDomain())
}
