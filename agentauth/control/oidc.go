package control

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/agentauth/agentauth/agentauth/config"
	"github.com/agentauth/agentauth/agentauth/control/api"
)

// oidcVerifier checks humans' ID tokens against the configured issuer's
// published keys. Discovery runs on first use and is retried on failure,
// so the gateway starts while the provider is down.
type oidcVerifier struct {
	cfg    config.OIDC
	client *http.Client
	now    func() time.Time

	mu       sync.Mutex
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
}

func newOIDCVerifier(cfg config.OIDC, client *http.Client, now func() time.Time) *oidcVerifier {
	if client == nil {
		client = http.DefaultClient
	}
	if cfg.GroupsClaim == "" {
		cfg.GroupsClaim = "groups"
	}
	return &oidcVerifier{cfg: cfg, client: client, now: now}
}

// load discovers the provider once. The context given to NewProvider is
// kept by go-oidc for later key fetches, so it carries only the client.
func (v *oidcVerifier) load(ctx context.Context) (*oidc.Provider, *oidc.IDTokenVerifier, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.provider != nil {
		return v.provider, v.verifier, nil
	}
	kctx := oidc.ClientContext(context.Background(), v.client)
	dctx, cancel := context.WithTimeout(kctx, 10*time.Second)
	defer cancel()
	go func() {
		select {
		case <-ctx.Done():
			cancel()
		case <-dctx.Done():
		}
	}()
	p, err := oidc.NewProvider(oidc.ClientContext(dctx, v.client), v.cfg.Issuer)
	if err != nil {
		return nil, nil, fmt.Errorf("discover OpenID provider %s: %w", v.cfg.Issuer, err)
	}
	// The key set gets its own context: dctx ends when discovery does.
	keys := oidc.NewRemoteKeySet(kctx, jwksURL(p))
	v.verifier = oidc.NewVerifier(v.cfg.Issuer, keys, &oidc.Config{
		ClientID:             v.cfg.Audience,
		Now:                  v.now,
		SupportedSigningAlgs: []string{"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "EdDSA"},
	})
	v.provider = p
	return p, v.verifier, nil
}

func jwksURL(p *oidc.Provider) string {
	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	_ = p.Claims(&meta)
	return meta.JWKSURI
}

// errTokenInvalid is returned for every token that fails verification.
var errTokenInvalid = errors.New("invalid ID token")

// Verify checks raw and returns the sponsor it names.
func (v *oidcVerifier) Verify(ctx context.Context, raw string) (api.Sponsor, error) {
	_, verifier, err := v.load(ctx)
	if err != nil {
		return api.Sponsor{}, err
	}
	tok, err := verifier.Verify(oidc.ClientContext(ctx, v.client), raw)
	if err != nil {
		return api.Sponsor{}, fmt.Errorf("%w: %v", errTokenInvalid, err)
	}
	return v.sponsorFromToken(tok)
}

func (v *oidcVerifier) sponsorFromToken(tok *oidc.IDToken) (api.Sponsor, error) {
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return api.Sponsor{}, fmt.Errorf("%w: claims: %v", errTokenInvalid, err)
	}
	if tok.Subject == "" {
		return api.Sponsor{}, fmt.Errorf("%w: no subject", errTokenInvalid)
	}
	sp := api.Sponsor{Issuer: tok.Issuer, Subject: tok.Subject}
	if e, ok := claims["email"].(string); ok {
		sp.Email = e
	}
	sp.Groups = stringsClaim(claims[v.cfg.GroupsClaim])
	sp.Roles = mapRoles(v.cfg.Roles, sp.Groups)
	return sp, nil
}

// stringsClaim reads a claim that is either a string or a list of strings.
func stringsClaim(c any) []string {
	switch c := c.(type) {
	case string:
		return []string{c}
	case []any:
		var out []string
		for _, x := range c {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// mapRoles returns the sorted agentauth roles that the groups map to.
func mapRoles(roles map[string]string, groups []string) []string {
	var out []string
	for _, g := range groups {
		if r, ok := roles[g]; ok && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out
}

// The roles that the control API checks.
const (
	// RoleAdmin may deactivate sponsors, revoke any run and list all runs.
	RoleAdmin = "admin"
	// RoleAuditor may read every run. Who may approve a call is decided
	// by the policy's roles, not by this mapping.
	RoleAuditor = "auditor"
)

func hasRole(sp api.Sponsor, role string) bool { return slices.Contains(sp.Roles, role) }
