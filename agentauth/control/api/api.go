// Package api holds the JSON documents of the agentauth control API, shared
// by the server in package control and the Go SDK. docs/openapi.yaml
// describes the same documents.
package api

import "time"

// MaxBodyBytes caps every request body the control API reads.
const MaxBodyBytes = 64 << 10

// Run is one agent run as the control API shows it.
type Run struct {
	ID        string    `json:"id"`
	SPIFFEID  string    `json:"spiffe_id"`
	Agent     string    `json:"agent"`
	ParentID  string    `json:"parent_id,omitempty"`
	Sponsor   Sponsor   `json:"sponsor"`
	Grants    []string  `json:"grants"`
	Purpose   string    `json:"purpose,omitempty"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// Chain lists the delegation chain from the sponsor's first run down to
	// this run; it is filled when one run is shown.
	Chain []Hop `json:"chain,omitempty"`
}

// Hop is one identity of a delegation chain.
type Hop struct {
	RunID    string `json:"run_id,omitempty"`
	Agent    string `json:"agent,omitempty"`
	SPIFFEID string `json:"spiffe_id"`
}

// Sponsor is an authenticated human: issuer plus subject.
type Sponsor struct {
	Issuer  string   `json:"issuer"`
	Subject string   `json:"subject"`
	Email   string   `json:"email,omitempty"`
	Groups  []string `json:"groups,omitempty"`
	Roles   []string `json:"roles,omitempty"`
}

// String returns subject@issuer, the form people read in tables and logs.
func (s Sponsor) String() string { return s.Subject + "@" + s.Issuer }

// StartRunRequest is the body of a request to start a run for the caller.
type StartRunRequest struct {
	Agent   string   `json:"agent"`
	Grants  []string `json:"grants"`
	Purpose string   `json:"purpose,omitempty"`
	// TTL is the run's lifetime as a Go duration ("15m"); empty takes the
	// policy's default.
	TTL string `json:"ttl,omitempty"`
	// CSR is a PEM or base64 DER PKCS #10 request for the run's key. When
	// set, the response carries the signed SVID and no bootstrap token.
	CSR string `json:"csr,omitempty"`
}

// DelegateRequest is the body of a request for a child run of the calling
// agent's run.
type DelegateRequest struct {
	Agent   string   `json:"agent"`
	Grants  []string `json:"grants"`
	Purpose string   `json:"purpose,omitempty"`
	TTL     string   `json:"ttl,omitempty"`
	CSR     string   `json:"csr,omitempty"`
}

// StartRunResponse is the reply to a start or delegate request. Exactly one
// of BootstrapToken and SVID is set.
type StartRunResponse struct {
	Run Run `json:"run"`
	// BootstrapToken is a single-use secret that the agent exchanges, with
	// a CSR, for its SVID before BootstrapExpiresAt.
	BootstrapToken     string     `json:"bootstrap_token,omitempty"`
	BootstrapExpiresAt *time.Time `json:"bootstrap_expires_at,omitempty"`
	SVID               *SVID      `json:"svid,omitempty"`
}

// ExchangeRequest trades a bootstrap token and a CSR for the run's SVID.
type ExchangeRequest struct {
	BootstrapToken string `json:"bootstrap_token"`
	CSR            string `json:"csr"`
}

// RenewRequest is the body of a request for a new SVID. The caller
// authenticates with its current SVID over mTLS.
type RenewRequest struct {
	CSR string `json:"csr"`
}

// JWTSVIDRequest asks for a JWT-SVID of the calling run, which
// authenticates with its X.509-SVID over mTLS.
type JWTSVIDRequest struct {
	// Audience is the single audience of the token: the gateway's SPIFFE
	// ID, spiffe://<trust-domain>/agentauth/gateway, or a tool server's,
	// spiffe://<trust-domain>/tools/<name>.
	Audience string `json:"audience"`
}

// JWTSVID is a JWT-SVID of a run. Present it as an Authorization bearer
// token; it is a secret until it expires.
type JWTSVID struct {
	Token     string    `json:"token"`
	SPIFFEID  string    `json:"spiffe_id"`
	Audience  string    `json:"audience"`
	ExpiresAt time.Time `json:"expires_at"`
}

// SVID is a signed X.509-SVID with the trust bundle to verify peers.
type SVID struct {
	SPIFFEID string `json:"spiffe_id"`
	// CertChainPEM holds the leaf first, then any intermediates.
	CertChainPEM string    `json:"cert_chain_pem"`
	BundlePEM    string    `json:"bundle_pem"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// RevokeRequest revokes a run and everything it delegated.
type RevokeRequest struct {
	Reason string `json:"reason,omitempty"`
}

// Approval is one request for step-up approval of a tool call.
type Approval struct {
	ID        string         `json:"id"`
	RunID     string         `json:"run_id"`
	Chain     []Hop          `json:"chain,omitempty"`
	Sponsor   Sponsor        `json:"sponsor"`
	Server    string         `json:"server"`
	Tool      string         `json:"tool"`
	Grant     string         `json:"grant,omitempty"`
	Approver  string         `json:"approver,omitempty"` // "sponsor" or a policy role
	Arguments map[string]any `json:"arguments,omitempty"`
	// ArgsDigest is the hex SHA-256 of the exact argument bytes the
	// approval is bound to.
	ArgsDigest string    `json:"args_digest,omitempty"`
	Purpose    string    `json:"purpose,omitempty"`
	Status     string    `json:"status"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
	DecidedBy  *Sponsor  `json:"decided_by,omitempty"`
	Comment    string    `json:"comment,omitempty"`
}

// DecisionRequest approves or denies an approval, with a comment.
type DecisionRequest struct {
	Comment string `json:"comment,omitempty"`
}

// BreakGlassRequest starts a break-glass run for the calling human: a
// run holding one break-glass grant, time-boxed and flagged in every
// decision it produces.
type BreakGlassRequest struct {
	Grant  string `json:"grant"`
	Agent  string `json:"agent"`
	Reason string `json:"reason"`
	// TTL is how long the run lasts, as a Go duration ("30m"); empty takes
	// the grant's maximum.
	TTL string `json:"ttl,omitempty"`
	CSR string `json:"csr,omitempty"`
}

// SponsorRequest names a human to deactivate (offboard: every run they
// sponsored stops at once) or to reactivate.
type SponsorRequest struct {
	Issuer  string `json:"issuer"`
	Subject string `json:"subject"`
	Reason  string `json:"reason,omitempty"`
}

// DeactivateSponsorRequest is the body of POST /v1/sponsors/deactivate.
type DeactivateSponsorRequest = SponsorRequest

// Identity is the reply of GET /v1/whoami.
type Identity struct {
	Kind    string   `json:"kind"` // "sponsor" or "agent"
	Sponsor *Sponsor `json:"sponsor,omitempty"`
	// SPIFFEID and RunID are set for an agent.
	SPIFFEID string `json:"spiffe_id,omitempty"`
	RunID    string `json:"run_id,omitempty"`
}

// Error is the body of every error reply.
type Error struct {
	// Code is stable and machine-readable; see the Code constants.
	Code string `json:"code"`
	// Message names what failed and what to do next.
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// The error codes of the control API. They are part of the public
// contract: add new ones, never rename.
const (
	CodeInvalidRequest    = "invalid_request"
	CodeUnauthenticated   = "unauthenticated"
	CodeForbidden         = "forbidden"
	CodeNotFound          = "not_found"
	CodeConflict          = "conflict"
	CodeBootstrapInvalid  = "bootstrap_token_invalid"
	CodeCSRInvalid        = "csr_invalid"
	CodeRequestTooLarge   = "request_too_large"
	CodeUnsupportedMedia  = "unsupported_media_type"
	CodeMethodNotAllowed  = "method_not_allowed"
	CodeInternal          = "internal"
	CodeUnavailable       = "unavailable"
	CodeEntitlementDenied = "entitlement_denied"
)
