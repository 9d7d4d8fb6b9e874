package gateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// Caller is the authenticated workload behind one HTTP request.
type Caller struct {
	ID spiffeid.ID
	// RunID and Agent are set when the caller is an agent run.
	RunID string
	Agent string
	// ToolServer is set when the caller is a tool server calling back.
	ToolServer string
}

// IsToolServer reports whether the caller is a tool server.
func (c Caller) IsToolServer() bool { return c.ToolServer != "" }

type callerKey struct{}

// CallerFromContext returns the caller that the gateway authenticated.
func CallerFromContext(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// errHuman is returned for a bearer token that names a person.
var errHuman = errors.New("this endpoint is for agent runs and tool servers, " +
	"not people: humans use the control API to sponsor a run, then the run " +
	"connects with its SVID")

// authenticate finds the caller: the TLS peer's X.509-SVID first, else a
// JWT-SVID bearer token for the gateway's audience.
func (g *Gateway) authenticate(r *http.Request) (Caller, error) {
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		id, err := x509svid.IDFromCert(r.TLS.PeerCertificates[0])
		if err != nil {
			return Caller{}, fmt.Errorf("client certificate has no SPIFFE ID: %w", err)
		}
		return g.callerFor(id)
	}
	token, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		return Caller{}, errors.New("no credential: present the run's X.509-SVID " +
			"over mTLS or a JWT-SVID as an Authorization bearer token")
	}
	if !spiffeSubject(token) {
		return Caller{}, errHuman
	}
	if g.opts.JWT == nil {
		return Caller{}, errors.New("JWT-SVID bearer tokens are not enabled; use mTLS")
	}
	id, err := g.opts.JWT.ValidateJWTSVID(r.Context(), token, g.opts.Audience)
	if err != nil {
		return Caller{}, fmt.Errorf("JWT-SVID rejected: %w", err)
	}
	return g.callerFor(id)
}

// callerFor maps a SPIFFE ID of the gateway's trust domain to a caller.
func (g *Gateway) callerFor(id spiffeid.ID) (Caller, error) {
	if id.TrustDomain() != g.opts.TrustDomain {
		return Caller{}, fmt.Errorf("SPIFFE ID %q is outside trust domain %q", id, g.opts.TrustDomain)
	}
	seg := strings.Split(strings.TrimPrefix(id.Path(), "/"), "/")
	switch {
	case len(seg) == 4 && seg[0] == "agents" && seg[2] == "runs" && seg[1] != "" && seg[3] != "":
		return Caller{ID: id, Agent: seg[1], RunID: seg[3]}, nil
	case len(seg) == 2 && seg[0] == "tools" && seg[1] != "":
		return Caller{ID: id, ToolServer: seg[1]}, nil
	}
	return Caller{}, fmt.Errorf("SPIFFE ID %q is neither a run nor a tool server", id)
}

func bearer(h string) (string, bool) {
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	return strings.TrimSpace(h[len(prefix):]), true
}

// spiffeSubject reports whether an unverified JWT names a SPIFFE ID as its
// subject. It only sorts people from workloads for the error message; the
// token is verified afterwards.
func spiffeSubject(token string) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return true // not a JWT at all; let validation say why
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return true
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return true
	}
	return strings.HasPrefix(claims.Sub, "spiffe://")
}
