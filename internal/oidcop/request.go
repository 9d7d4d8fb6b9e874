package oidcop

import (
	"crypto/rand"
	"encoding/base64"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// authRequest implements op.AuthRequest.
type authRequest struct {
	id        string
	req       oidc.AuthRequest
	challenge *oidc.CodeChallenge
	created   time.Time
	subject   string
	authTime  time.Time
	done      bool
}

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return "" }
func (a *authRequest) GetAMR() []string                      { return []string{"pwd"} }
func (a *authRequest) GetAudience() []string                 { return []string{a.req.ClientID} }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.req.ClientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.challenge }
func (a *authRequest) GetNonce() string                      { return a.req.Nonce }
func (a *authRequest) GetRedirectURI() string                { return a.req.RedirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.req.ResponseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return a.req.ResponseMode }
func (a *authRequest) GetScopes() []string                   { return a.req.Scopes }
func (a *authRequest) GetState() string                      { return a.req.State }
func (a *authRequest) GetSubject() string                    { return a.subject }
func (a *authRequest) Done() bool                            { return a.done }

// Client is a public OIDC client of the test provider.
type Client struct {
	ID        string
	Redirects []string
	// Lifetime of ID tokens; zero means five minutes.
	Lifetime time.Duration
}

var _ op.Client = (*Client)(nil)

func (c *Client) GetID() string                       { return c.ID }
func (c *Client) RedirectURIs() []string              { return c.Redirects }
func (c *Client) PostLogoutRedirectURIs() []string    { return nil }
func (c *Client) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c *Client) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodNone }
func (c *Client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *Client) GrantTypes() []oidc.GrantType                             { return []oidc.GrantType{oidc.GrantTypeCode} }
func (c *Client) LoginURL(id string) string                                { return "/login?id=" + id }
func (c *Client) AccessTokenType() op.AccessTokenType                      { return op.AccessTokenTypeBearer }
func (c *Client) DevMode() bool                                            { return false }
func (c *Client) IsScopeAllowed(string) bool                               { return true }
func (c *Client) IDTokenUserinfoClaimsAssertion() bool                     { return true }
func (c *Client) ClockSkew() time.Duration                                 { return 0 }
func (c *Client) RestrictAdditionalIdTokenScopes() func([]string) []string { return same }
func (c *Client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return same
}

func (c *Client) IDTokenLifetime() time.Duration {
	if c.Lifetime > 0 {
		return c.Lifetime
	}
	return 5 * time.Minute
}

func same(s []string) []string { return s }

func randomString() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
