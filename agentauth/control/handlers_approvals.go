package control

import (
	"fmt"
	"net/http"
	"time"

	"github.com/agentauth/agentauth/agentauth/control/api"
)

// maxCommentBytes bounds an approver's comment.
const maxCommentBytes = 2048

func requireApprover(sp api.Sponsor) *api.Error {
	if hasRole(sp, RoleApprover) || hasRole(sp, RoleAdmin) {
		return nil
	}
	return errForbidden(fmt.Sprintf("%s has no %q role; ask an admin to map one of your "+
		"groups to it in oidc.roles", sp.String(), RoleApprover))
}

func (s *Server) handleListApprovals(w http.ResponseWriter, r *http.Request, c caller) {
	if aerr := requireApprover(*c.sponsor); aerr != nil {
		writeError(w, aerr)
		return
	}
	status := r.URL.Query().Get("status")
	switch status {
	case "", "pending", "approved", "denied", "expired":
	default:
		writeError(w, errInvalid(fmt.Sprintf("status %q is invalid; use pending, approved, "+
			"denied or expired", status)))
		return
	}
	list, err := s.deps.Approvals.ListApprovals(r.Context(), status)
	if err != nil {
		s.serviceError(w, "list approvals", err)
		return
	}
	if list == nil {
		list = []api.Approval{}
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) handleGetApproval(w http.ResponseWriter, r *http.Request, c caller) {
	if aerr := requireApprover(*c.sponsor); aerr != nil {
		writeError(w, aerr)
		return
	}
	a, err := s.deps.Approvals.GetApproval(r.Context(), r.PathValue("id"))
	if err != nil {
		s.serviceError(w, "get approval", err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func (s *Server) handleApprove(w http.ResponseWriter, r *http.Request, c caller) {
	s.decide(w, r, c, true)
}

func (s *Server) handleDeny(w http.ResponseWriter, r *http.Request, c caller) {
	s.decide(w, r, c, false)
}

func (s *Server) decide(w http.ResponseWriter, r *http.Request, c caller, approve bool) {
	var req api.DecisionRequest
	if aerr := decode(w, r, &req); aerr != nil {
		writeError(w, aerr)
		return
	}
	a, aerr := s.recordDecision(r, *c.sponsor, r.PathValue("id"), approve, req.Comment)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// recordDecision checks the approver and records the decision; the JSON
// API and the approvals page share it.
func (s *Server) recordDecision(r *http.Request, by api.Sponsor, id string, approve bool,
	comment string) (api.Approval, *api.Error) {
	if aerr := requireApprover(by); aerr != nil {
		return api.Approval{}, aerr
	}
	if len(comment) > maxCommentBytes {
		return api.Approval{}, errInvalid(fmt.Sprintf("comment is over %d bytes; shorten it", maxCommentBytes))
	}
	var a api.Approval
	var err error
	if approve {
		a, err = s.deps.Approvals.Approve(r.Context(), id, by, comment)
	} else {
		a, err = s.deps.Approvals.Deny(r.Context(), id, by, comment)
	}
	if err != nil {
		return api.Approval{}, s.classify("decide approval", err)
	}
	s.log.Info("approval decided", "approval", id, "approved", approve, "by", by.String())
	return a, nil
}

func (s *Server) handleBreakGlass(w http.ResponseWriter, r *http.Request, c caller) {
	var req api.BreakGlassRequest
	if aerr := decode(w, r, &req); aerr != nil {
		writeError(w, aerr)
		return
	}
	if len(req.Reason) < 10 || len(req.Reason) > 1024 {
		writeError(w, errInvalid("reason must be 10 to 1024 bytes; say why emergency access is needed"))
		return
	}
	ttl, err := time.ParseDuration(req.TTL)
	if err != nil || ttl <= 0 || ttl > 4*time.Hour {
		writeError(w, errInvalid(fmt.Sprintf("ttl %q is invalid; give a Go duration up to 4h", req.TTL)))
		return
	}
	bg, err := s.deps.Runs.BreakGlass(r.Context(), *c.sponsor, req.Reason, req.RunID, ttl)
	if err != nil {
		s.serviceError(w, "break glass", err)
		return
	}
	s.log.Warn("break-glass access opened", "sponsor", c.sponsor.String(), "run", req.RunID,
		"expires", bg.ExpiresAt)
	writeJSON(w, http.StatusCreated, bg)
}

func (s *Server) handleDeactivateSponsor(w http.ResponseWriter, r *http.Request, c caller) {
	if !hasRole(*c.sponsor, RoleAdmin) {
		writeError(w, errForbidden(fmt.Sprintf("%s has no %q role; only an admin may "+
			"deactivate a sponsor", c.sponsor.String(), RoleAdmin)))
		return
	}
	var req api.DeactivateSponsorRequest
	if aerr := decode(w, r, &req); aerr != nil {
		writeError(w, aerr)
		return
	}
	if req.Issuer == "" || req.Subject == "" {
		writeError(w, errInvalid("issuer and subject are required; name the sponsor to deactivate"))
		return
	}
	err := s.deps.Runs.DeactivateSponsor(r.Context(), req.Issuer, req.Subject, *c.sponsor, req.Reason)
	if err != nil {
		s.serviceError(w, "deactivate sponsor", err)
		return
	}
	s.log.Warn("sponsor deactivated", "issuer", req.Issuer, "subject", req.Subject,
		"by", c.sponsor.String())
	w.WriteHeader(http.StatusNoContent)
}
