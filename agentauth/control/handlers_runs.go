package control

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/agentauth/agentauth/agentauth/control/api"
)

// maxRunTTL bounds the lifetime a caller may ask for; policy may cut it
// further.
const maxRunTTL = 24 * time.Hour

// maxTextBytes bounds a purpose or a reason.
const maxTextBytes = 1024

func parseTTL(s string) (time.Duration, *api.Error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 || d > maxRunTTL {
		return 0, errInvalid(fmt.Sprintf("ttl %q is invalid; give a positive Go duration "+
			"such as \"15m\", at most %v", s, maxRunTTL))
	}
	return d, nil
}

// runRequest validates the fields shared by start and delegate.
func runRequest(agent string, grants []string, purpose, ttl, csr string) (RunRequest, []byte, *api.Error) {
	if agent == "" {
		return RunRequest{}, nil, errInvalid("agent is empty; name an agent declared in policy")
	}
	if len(grants) == 0 {
		return RunRequest{}, nil, errInvalid("grants is empty; name at least one grant")
	}
	if aerr := checkText("purpose", purpose, maxTextBytes); aerr != nil {
		return RunRequest{}, nil, aerr
	}
	d, aerr := parseTTL(ttl)
	if aerr != nil {
		return RunRequest{}, nil, aerr
	}
	var der []byte
	if csr != "" {
		var err error
		if der, err = ParseCSR(csr); err != nil {
			return RunRequest{}, nil, &api.Error{Code: api.CodeCSRInvalid, Message: err.Error()}
		}
	}
	return RunRequest{Agent: agent, Grants: grants, Purpose: purpose, TTL: d}, der, nil
}

func (s *Server) handleStartRun(w http.ResponseWriter, r *http.Request, c caller) {
	var req api.StartRunRequest
	if aerr := decode(w, r, &req); aerr != nil {
		writeError(w, aerr)
		return
	}
	rr, der, aerr := runRequest(req.Agent, req.Grants, req.Purpose, req.TTL, req.CSR)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	run, err := s.deps.Runs.StartRun(r.Context(), *c.sponsor, rr)
	if err != nil {
		s.serviceError(w, "start run", err)
		return
	}
	s.log.Info("run started", "run", run.ID, "agent", run.Agent, "sponsor", c.sponsor.String())
	recordRun(r, run)
	s.replyNewRun(w, r, run, der)
}

func (s *Server) handleDelegate(w http.ResponseWriter, r *http.Request, c caller) {
	if r.PathValue("id") != c.agent.RunID {
		writeError(w, errForbidden("an agent may delegate only from its own run "+c.agent.RunID))
		return
	}
	var req api.DelegateRequest
	if aerr := decode(w, r, &req); aerr != nil {
		writeError(w, aerr)
		return
	}
	rr, der, aerr := runRequest(req.Agent, req.Grants, req.Purpose, req.TTL, req.CSR)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	run, err := s.deps.Runs.Delegate(r.Context(), c.agent.RunID, rr)
	if err != nil {
		s.serviceError(w, "delegate", err)
		return
	}
	s.log.Info("run delegated", "run", run.ID, "parent", c.agent.RunID, "agent", run.Agent)
	recordRun(r, run)
	s.replyNewRun(w, r, run, der)
}

// replyNewRun signs the CSR when one came, or else issues a bootstrap token.
func (s *Server) replyNewRun(w http.ResponseWriter, r *http.Request, run api.Run, der []byte) {
	resp := api.StartRunResponse{Run: run}
	if der != nil {
		svid, aerr := s.issueSVID(r, run, der)
		if aerr != nil {
			writeError(w, aerr)
			return
		}
		resp.SVID = svid
	} else {
		tok, exp := s.bootstrap.Issue(enrollment{RunID: run.ID, Agent: run.Agent, NotAfter: run.ExpiresAt})
		resp.BootstrapToken, resp.BootstrapExpiresAt = tok, &exp
	}
	writeJSON(w, http.StatusCreated, resp)
}

func (s *Server) handleListRuns(w http.ResponseWriter, r *http.Request, c caller) {
	q := r.URL.Query()
	f := RunFilter{Status: q.Get("status"), Agent: q.Get("agent")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, errInvalid(fmt.Sprintf("limit %q is invalid; give 1 to 1000", l)))
			return
		}
		f.Limit = n
	}
	// People see the runs they sponsored; admins see every run.
	if !hasRole(*c.sponsor, RoleAdmin) || q.Get("all") != "true" {
		f.SponsorIssuer, f.SponsorSubject = c.sponsor.Issuer, c.sponsor.Subject
	}
	runs, err := s.deps.Runs.ListRuns(r.Context(), f)
	if err != nil {
		s.serviceError(w, "list runs", err)
		return
	}
	if runs == nil {
		runs = []api.Run{}
	}
	writeJSON(w, http.StatusOK, runs)
}

func (s *Server) handleGetRun(w http.ResponseWriter, r *http.Request, c caller) {
	id := r.PathValue("id")
	if c.agent != nil && id != c.agent.RunID {
		writeError(w, errForbidden("an agent may read only its own run "+c.agent.RunID))
		return
	}
	run, err := s.deps.Runs.GetRun(r.Context(), id)
	if err != nil {
		s.serviceError(w, "get run", err)
		return
	}
	if c.sponsor != nil && !s.maySee(*c.sponsor, run) {
		writeError(w, &api.Error{Code: api.CodeNotFound, Message: "run " + id + " not found"})
		return
	}
	writeJSON(w, http.StatusOK, run)
}

// maySee reports whether a human may read a run: its sponsor, an admin
// or an auditor.
func (s *Server) maySee(sp api.Sponsor, run api.Run) bool {
	return isSponsorOf(sp, run) || hasRole(sp, RoleAdmin) || hasRole(sp, RoleAuditor)
}

func isSponsorOf(sp api.Sponsor, run api.Run) bool {
	return run.Sponsor.Issuer == sp.Issuer && run.Sponsor.Subject == sp.Subject
}

func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request, c caller) {
	id := r.PathValue("id")
	var req api.RevokeRequest
	if aerr := decode(w, r, &req); aerr != nil {
		writeError(w, aerr)
		return
	}
	if aerr := checkText("reason", req.Reason, maxTextBytes); aerr != nil {
		writeError(w, aerr)
		return
	}
	run, err := s.deps.Runs.GetRun(r.Context(), id)
	if err != nil {
		s.serviceError(w, "revoke run", err)
		return
	}
	if !isSponsorOf(*c.sponsor, run) && !hasRole(*c.sponsor, RoleAdmin) {
		writeError(w, errForbidden(fmt.Sprintf("run %s is sponsored by %s; only its sponsor "+
			"or an admin may revoke it", id, run.Sponsor.String())))
		return
	}
	if err := s.deps.Runs.Revoke(r.Context(), id, *c.sponsor, req.Reason); err != nil {
		s.serviceError(w, "revoke run", err)
		return
	}
	s.log.Info("run revoked", "run", id, "sponsor", c.sponsor.String())
	if run, err = s.deps.Runs.GetRun(r.Context(), id); err != nil {
		s.serviceError(w, "revoke run", err)
		return
	}
	writeJSON(w, http.StatusOK, run)
}
