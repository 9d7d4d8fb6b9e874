package control

import (
	"fmt"
	"net/http"

	"github.com/agentauth/agentauth/agentauth/control/api"
)

// maxCommentBytes bounds an approver's comment.
const maxCommentBytes = 2048

func (s *Server) handleListApprovals(w http.ResponseWriter, r *http.Request, c caller) {
	status := r.URL.Query().Get("status")
	switch status {
	case "", "pending", "approved", "denied", "expired":
	default:
		writeError(w, errInvalid(fmt.Sprintf("status %q is invalid; use pending, approved, "+
			"denied or expired", status)))
		return
	}
	list, err := s.deps.Approvals.ListApprovals(r.Context(), *c.sponsor, status)
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
	if aerr := checkText("comment", comment, maxCommentBytes); aerr != nil {
		return api.Approval{}, aerr
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
	if len(req.Reason) < 10 || len(req.Reason) > maxTextBytes {
		writeError(w, errInvalid("reason must be 10 to 1024 bytes; say why emergency access is needed"))
		return
	}
	if aerr := checkText("reason", req.Reason, maxTextBytes); aerr != nil {
		writeError(w, aerr)
		return
	}
	rr, der, aerr := runRequest(req.Agent, []string{req.Grant}, req.Reason, req.TTL, req.CSR)
	if aerr != nil || req.Grant == "" {
		if aerr == nil {
			aerr = errInvalid("grant is empty; name a break-glass grant from policy")
		}
		writeError(w, aerr)
		return
	}
	run, err := s.deps.Runs.BreakGlass(r.Context(), *c.sponsor, req.Grant, req.Agent, req.Reason, rr.TTL)
	if err != nil {
		s.serviceError(w, "break glass", err)
		return
	}
	s.log.Warn("break-glass run started", "sponsor", c.sponsor.String(), "run", run.ID,
		"grant", req.Grant, "expires", run.ExpiresAt)
	s.replyNewRun(w, r, run, der)
}

func (s *Server) handleDeactivateSponsor(w http.ResponseWriter, r *http.Request, c caller) {
	req, ok := s.sponsorRequest(w, r, c, "deactivate")
	if !ok {
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

func (s *Server) handleReactivateSponsor(w http.ResponseWriter, r *http.Request, c caller) {
	req, ok := s.sponsorRequest(w, r, c, "reactivate")
	if !ok {
		return
	}
	if err := s.deps.Runs.ReactivateSponsor(r.Context(), req.Issuer, req.Subject, *c.sponsor); err != nil {
		s.serviceError(w, "reactivate sponsor", err)
		return
	}
	s.log.Warn("sponsor reactivated", "issuer", req.Issuer, "subject", req.Subject,
		"by", c.sponsor.String(), "reason", req.Reason)
	w.WriteHeader(http.StatusNoContent)
}

// sponsorRequest checks that the caller is an admin and decodes the
// sponsor to deactivate or reactivate; it replies itself on failure.
func (s *Server) sponsorRequest(w http.ResponseWriter, r *http.Request, c caller,
	verb string) (api.SponsorRequest, bool) {
	var req api.SponsorRequest
	if !hasRole(*c.sponsor, RoleAdmin) {
		writeError(w, errForbidden(fmt.Sprintf("%s has no %q role; only an admin may "+
			"%s a sponsor", c.sponsor.String(), RoleAdmin, verb)))
		return req, false
	}
	if aerr := decode(w, r, &req); aerr != nil {
		writeError(w, aerr)
		return req, false
	}
	if req.Issuer == "" || req.Subject == "" {
		writeError(w, errInvalid("issuer and subject are required; name the sponsor to "+verb))
		return req, false
	}
	if aerr := checkText("reason", req.Reason, maxTextBytes); aerr != nil {
		writeError(w, aerr)
		return req, false
	}
	return req, true
}
