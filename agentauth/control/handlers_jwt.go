package control

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"

	"github.com/agentauth/agentauth/agentauth/control/api"
)

// JWTMinter mints JWT-SVIDs. The SPIFFE authority implements it.
type JWTMinter interface {
	// MintJWTSVID mints a JWT-SVID for id with exactly one audience,
	// living ttl capped at the configured JWT TTL.
	MintJWTSVID(ctx context.Context, id spiffeid.ID, audience string, ttl time.Duration) (string, error)
}

// maxAudienceBytes bounds the audience of a JWT-SVID request.
const maxAudienceBytes = 2048

func (s *Server) handleJWTSVID(w http.ResponseWriter, r *http.Request, c caller) {
	if s.deps.JWTs == nil {
		writeError(w, &api.Error{Code: api.CodeUnavailable, Message: "this gateway mints no JWT-SVIDs; " +
			"authenticate with the run's X.509-SVID over mTLS"})
		return
	}
	var req api.JWTSVIDRequest
	if aerr := decode(w, r, &req); aerr != nil {
		writeError(w, aerr)
		return
	}
	if aerr := s.checkAudience(req.Audience); aerr != nil {
		s.log.Info("JWT-SVID request rejected", "run", c.agent.RunID, "err", aerr.Message)
		writeError(w, aerr)
		return
	}
	run, err := s.deps.Runs.GetRun(r.Context(), c.agent.RunID)
	if err != nil {
		s.serviceError(w, "mint JWT-SVID", err)
		return
	}
	now := s.now()
	if run.Status != RunActive || !now.Before(run.ExpiresAt) {
		s.log.Info("JWT-SVID request rejected", "run", run.ID, "status", runState(run, now))
		writeError(w, errForbidden(fmt.Sprintf("run %s is %s; start a new run", run.ID, runState(run, now))))
		return
	}
	// The token never outlives the run.
	ttl := run.ExpiresAt.Sub(now)
	if max := s.cfg.CA.JWTTTL; max > 0 && max < ttl {
		ttl = max
	}
	token, err := s.deps.JWTs.MintJWTSVID(r.Context(), c.agent.ID, req.Audience, ttl)
	if err != nil {
		writeError(w, s.internal("mint JWT-SVID", err))
		return
	}
	svid, err := jwtsvid.ParseInsecure(token, []string{req.Audience})
	if err != nil {
		writeError(w, s.internal("mint JWT-SVID", err))
		return
	}
	s.log.Info("run JWT-SVID issued", "run", run.ID, "audience", req.Audience, "expires", svid.Expiry)
	writeJSON(w, http.StatusOK, api.JWTSVID{Token: token, SPIFFEID: c.agent.ID.String(),
		Audience: req.Audience, ExpiresAt: svid.Expiry})
}

// checkAudience admits the gateway's SPIFFE ID and the SPIFFE ID of a
// tool server of the trust domain, spiffe://<td>/tools/<name>.
func (s *Server) checkAudience(aud string) *api.Error {
	if aud == "" || len(aud) > maxAudienceBytes {
		return errInvalid("audience must be 1 to 2048 bytes; name the gateway, " + s.gatewayID().String())
	}
	id, err := spiffeid.FromString(aud)
	if err != nil || id.TrustDomain() != s.td {
		return errInvalid(fmt.Sprintf("audience %q is not a SPIFFE ID of %s; use %s or spiffe://%s/tools/<server>",
			aud, s.td, s.gatewayID(), s.td))
	}
	if id == s.gatewayID() || isToolServerID(id) {
		return nil
	}
	return errInvalid(fmt.Sprintf("audience %s is neither the gateway nor a tool server; use %s or "+
		"spiffe://%s/tools/<server>", id, s.gatewayID(), s.td))
}

func (s *Server) gatewayID() spiffeid.ID {
	id, _ := spiffeid.FromSegments(s.td, "agentauth", "gateway")
	return id
}

// isToolServerID reports whether id is /tools/<name> with a name of
// letters, digits and '-'.
func isToolServerID(id spiffeid.ID) bool {
	const prefix = "/tools/"
	p := id.Path()
	if len(p) <= len(prefix) || p[:len(prefix)] != prefix {
		return false
	}
	name := p[len(prefix):]
	if len(name) > 63 {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
