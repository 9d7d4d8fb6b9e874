package control

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agentauth/agentauth/agentauth/control/api"
)

// caller is who sent a request: a human sponsor or an agent run.
type caller struct {
	sponsor *api.Sponsor
	agent   *agentID
}

// agentID is an agent run authenticated by its X.509-SVID.
type agentID struct {
	ID    spiffeid.ID
	Agent string
	RunID string
}

// LocalIssuer is the issuer of sponsors who connect over the control socket.
const LocalIssuer = "local"

// authenticate identifies the caller from the transport: peer credentials
// on the Unix socket, the client certificate or a bearer ID token on TLS.
// It returns an *api.Error for a caller that cannot be identified.
func (s *Server) authenticate(r *http.Request) (caller, *api.Error) {
	if v := r.Context().Value(peerCredKey{}); v != nil {
		return s.authenticateLocal(v)
	}
	if r.TLS == nil {
		return caller{}, errUnauthenticated("the control API accepts only TLS or the control socket")
	}
	bearer, hasBearer := bearerToken(r)
	if len(r.TLS.PeerCertificates) > 0 {
		if hasBearer {
			return caller{}, errInvalid("send either a client certificate or a bearer token, not both")
		}
		return s.authenticateAgent(r)
	}
	if !hasBearer {
		return caller{}, errUnauthenticated("send an OIDC ID token as \"Authorization: Bearer <token>\"")
	}
	return s.authenticateHuman(r.Context(), bearer)
}

func (s *Server) authenticateLocal(v any) (caller, *api.Error) {
	cred, ok := v.(peerCred)
	if !ok {
		s.log.Warn("control socket peer credentials unreadable", "err", v)
		return caller{}, errUnauthenticated("the peer credentials of this socket connection are unreadable")
	}
	name, groups, err := localSponsor(cred)
	if err != nil {
		s.log.Warn("control socket user unknown", "uid", cred.UID, "err", err)
		return caller{}, errUnauthenticated(fmt.Sprintf("user id %d has no user name on this host", cred.UID))
	}
	sp := api.Sponsor{Issuer: LocalIssuer, Subject: name, Groups: groups}
	sp.Roles = mapRoles(s.cfg.OIDC.Roles, groups)
	// The gateway's own user and root administer a local gateway.
	if cred.UID == s.localAdminUID || cred.UID == 0 {
		sp.Roles = mergeRoles(sp.Roles, RoleAdmin)
	}
	return caller{sponsor: &sp}, nil
}

func mergeRoles(roles []string, add ...string) []string {
	for _, r := range add {
		if !hasRole(api.Sponsor{Roles: roles}, r) {
			roles = append(roles, r)
		}
	}
	return roles
}

func (s *Server) authenticateHuman(ctx context.Context, token string) (caller, *api.Error) {
	if s.oidc == nil {
		return caller{}, errUnauthenticated("no OIDC issuer is configured; set oidc.issuer " +
			"or use the control socket")
	}
	sp, err := s.oidc.Verify(ctx, token)
	if errors.Is(err, errTokenInvalid) {
		s.log.Info("ID token rejected", "err", err)
		return caller{}, errUnauthenticated("the ID token is invalid or expired; sign in again")
	}
	if err != nil {
		s.log.Error("OIDC verification failed", "err", err)
		return caller{}, &api.Error{Code: api.CodeUnavailable,
			Message: "the OpenID provider could not be reached; try again later"}
	}
	return caller{sponsor: &sp}, nil
}

func (s *Server) authenticateAgent(r *http.Request) (caller, *api.Error) {
	id, _, err := x509svid.Verify(r.TLS.PeerCertificates, s.deps.Bundles)
	if err != nil {
		s.log.Info("client certificate rejected", "err", err)
		return caller{}, errUnauthenticated("the client certificate is not a valid SVID of this trust domain")
	}
	a, err := parseRunID(s.td, id)
	if err != nil {
		return caller{}, &api.Error{Code: api.CodeForbidden, Message: err.Error()}
	}
	return caller{agent: &a}, nil
}

// parseRunID reads spiffe://<td>/agents/<agent>/runs/<run-id>.
func parseRunID(td spiffeid.TrustDomain, id spiffeid.ID) (agentID, error) {
	if id.TrustDomain() != td {
		return agentID{}, fmt.Errorf("SPIFFE ID %s is not in trust domain %s", id, td)
	}
	parts := strings.Split(strings.TrimPrefix(id.Path(), "/"), "/")
	if len(parts) != 4 || parts[0] != "agents" || parts[2] != "runs" {
		return agentID{}, fmt.Errorf("SPIFFE ID %s is not an agent run; only agent runs "+
			"may use the control API with a certificate", id)
	}
	return agentID{ID: id, Agent: parts[1], RunID: parts[3]}, nil
}

func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

// RunSPIFFEID returns the SPIFFE ID of a run.
func RunSPIFFEID(td spiffeid.TrustDomain, agent, runID string) (spiffeid.ID, error) {
	return spiffeid.FromSegments(td, "agents", agent, "runs", runID)
}
