package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/agentauth/agentauth/agentauth/control"
	"github.com/agentauth/agentauth/agentauth/control/api"
	"github.com/agentauth/agentauth/agentauth/runs"
)

// runService adapts the run manager to the control API's Runs and
// Approvals interfaces.
type runService struct {
	m *runs.Manager
	// args returns the exact arguments of a pending approval's call, so
	// the approvals page can show them; nil shows none.
	args func(approvalID string) json.RawMessage
}

var (
	_ control.Runs      = (*runService)(nil)
	_ control.Approvals = (*runService)(nil)
)

func (s *runService) StartRun(ctx context.Context, sp api.Sponsor, req control.RunRequest) (api.Run, error) {
	r, err := s.m.StartRun(ctx, runs.StartRequest{
		Sponsor: toSponsor(sp), Agent: req.Agent, Grants: req.Grants,
		Purpose: req.Purpose, TTL: req.TTL,
	})
	if err != nil {
		return api.Run{}, mapError(err)
	}
	return s.withChain(ctx, r)
}

func (s *runService) Delegate(ctx context.Context, parentID string, req control.RunRequest) (api.Run, error) {
	r, err := s.m.Delegate(ctx, runs.DelegateRequest{
		ParentID: parentID, Agent: req.Agent, Grants: req.Grants,
		Purpose: req.Purpose, TTL: req.TTL,
	})
	if err != nil {
		return api.Run{}, mapError(err)
	}
	return s.withChain(ctx, r)
}

func (s *runService) GetRun(ctx context.Context, id string) (api.Run, error) {
	r, err := s.m.GetRun(ctx, id)
	if err != nil {
		return api.Run{}, mapError(err)
	}
	return s.withChain(ctx, r)
}

func (s *runService) ListRuns(ctx context.Context, f control.RunFilter) ([]api.Run, error) {
	rf := runs.RunFilter{Agent: f.Agent, Status: runs.Status(f.Status), Limit: f.Limit}
	if f.SponsorIssuer != "" || f.SponsorSubject != "" {
		rf.Sponsor = &runs.SponsorKey{Issuer: f.SponsorIssuer, Subject: f.SponsorSubject}
	}
	list, err := s.m.ListRuns(ctx, rf)
	if err != nil {
		return nil, mapError(err)
	}
	out := make([]api.Run, 0, len(list))
	for _, r := range list {
		out = append(out, toAPIRun(r, s.m.Now()))
	}
	return out, nil
}

func (s *runService) Revoke(ctx context.Context, id string, by api.Sponsor, reason string) error {
	_, err := s.m.Revoke(ctx, toSponsor(by), id, reason)
	return mapError(err)
}

func (s *runService) BreakGlass(ctx context.Context, by api.Sponsor, reason, grant string, ttl time.Duration) (api.BreakGlass, error) {
	r, err := s.m.BreakGlass(ctx, runs.BreakGlassRequest{
		Sponsor: toSponsor(by), Grant: grant, Reason: reason, TTL: ttl,
	})
	if err != nil {
		return api.BreakGlass{}, mapError(err)
	}
	return api.BreakGlass{ID: r.ID, Sponsor: by, RunID: r.ID, Reason: reason, ExpiresAt: r.Expiry}, nil
}

func (s *runService) DeactivateSponsor(ctx context.Context, issuer, subject string, by api.Sponsor, reason string) error {
	_, err := s.m.DeactivateSponsor(ctx, toSponsor(by), runs.SponsorKey{Issuer: issuer, Subject: subject}, reason)
	return mapError(err)
}

func (s *runService) ListApprovals(ctx context.Context, status string) ([]api.Approval, error) {
	if status == "" {
		status = string(runs.ApprovalPending)
	}
	list, err := s.m.ListApprovals(ctx, runs.ApprovalFilter{Status: runs.ApprovalStatus(status)})
	if err != nil {
		return nil, mapError(err)
	}
	out := make([]api.Approval, 0, len(list))
	for _, a := range list {
		out = append(out, s.toAPIApproval(ctx, a))
	}
	return out, nil
}

func (s *runService) GetApproval(ctx context.Context, id string) (api.Approval, error) {
	a, err := s.m.GetApproval(id)
	if err != nil {
		return api.Approval{}, mapError(err)
	}
	return s.toAPIApproval(ctx, a), nil
}

func (s *runService) Approve(ctx context.Context, id string, by api.Sponsor, comment string) (api.Approval, error) {
	a, err := s.m.Approve(ctx, toSponsor(by), id, comment)
	if err != nil {
		return api.Approval{}, mapError(err)
	}
	return s.toAPIApproval(ctx, a), nil
}

func (s *runService) Deny(ctx context.Context, id string, by api.Sponsor, comment string) (api.Approval, error) {
	a, err := s.m.Deny(ctx, toSponsor(by), id, comment)
	if err != nil {
		return api.Approval{}, mapError(err)
	}
	return s.toAPIApproval(ctx, a), nil
}

func (s *runService) withChain(ctx context.Context, r runs.Run) (api.Run, error) {
	out := toAPIRun(r, s.m.Now())
	chain, err := s.m.GetChain(ctx, r.ID)
	if err != nil {
		return api.Run{}, mapError(err)
	}
	for _, c := range chain {
		out.Chain = append(out.Chain, api.Hop{RunID: c.ID, Agent: c.Agent, SPIFFEID: c.SPIFFEID})
	}
	return out, nil
}

func (s *runService) toAPIApproval(ctx context.Context, a runs.Approval) api.Approval {
	out := api.Approval{
		ID: a.ID, RunID: a.RunID, Sponsor: toAPISponsor(a.Sponsor),
		Server: a.Server, Tool: a.Name, Status: string(a.StatusAt(s.m.Now())),
		CreatedAt: a.Requested, ExpiresAt: a.Expires, Comment: a.Comment,
	}
	if a.DecidedBy != nil {
		d := toAPISponsor(*a.DecidedBy)
		out.DecidedBy = &d
	}
	if r, err := s.m.GetRun(ctx, a.RunID); err == nil {
		out.Purpose = r.Purpose
	}
	if chain, err := s.m.GetChain(ctx, a.RunID); err == nil {
		for _, c := range chain {
			out.Chain = append(out.Chain, api.Hop{RunID: c.ID, Agent: c.Agent, SPIFFEID: c.SPIFFEID})
		}
	}
	if s.args != nil {
		if raw := s.args(a.ID); raw != nil {
			var m map[string]any
			if json.Unmarshal(raw, &m) == nil {
				out.Arguments = m
			}
		}
	}
	return out
}

func toAPIRun(r runs.Run, now time.Time) api.Run {
	return api.Run{
		ID: r.ID, SPIFFEID: r.SPIFFEID, Agent: r.Agent, ParentID: r.ParentID,
		Sponsor: toAPISponsor(r.Sponsor), Grants: r.Grants, Purpose: r.Purpose,
		Status: string(r.StatusAt(now)), CreatedAt: r.Created, ExpiresAt: r.Expiry,
	}
}

func toSponsor(s api.Sponsor) runs.Sponsor {
	return runs.Sponsor{Issuer: s.Issuer, Subject: s.Subject, Email: s.Email, Groups: s.Groups}
}

func toAPISponsor(s runs.Sponsor) api.Sponsor {
	return api.Sponsor{Issuer: s.Issuer, Subject: s.Subject, Email: s.Email, Groups: s.Groups}
}

// mapError turns a runs error into the control API's error classes, which
// decide the HTTP status, keeping the message.
func mapError(err error) error {
	if err == nil {
		return nil
	}
	var re *runs.Error
	if !errors.As(err, &re) {
		return err
	}
	switch {
	case errors.Is(err, runs.ErrNotFound):
		return fmt.Errorf("%w: %s", control.ErrNotFound, re.Msg)
	case errors.Is(err, runs.ErrNotEntitled):
		return fmt.Errorf("%w: %s", control.ErrNotEntitled, re.Msg)
	case errors.Is(err, runs.ErrForbidden), errors.Is(err, runs.ErrEscalation):
		return fmt.Errorf("%w: %s", control.ErrForbidden, re.Msg)
	case errors.Is(err, runs.ErrConflict), errors.Is(err, runs.ErrInactive):
		return fmt.Errorf("%w: %s", control.ErrConflict, re.Msg)
	default:
		return fmt.Errorf("%w: %s", control.ErrInvalid, re.Msg)
	}
}
