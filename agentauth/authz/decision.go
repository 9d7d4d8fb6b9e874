// Package authz decides whether one MCP call of an agent run may go ahead,
// against the run's grants, its whole delegation chain and the sponsor
// who started it.
package authz

import (
	"encoding/json"
	"time"
)

// Effect is the outcome of a decision.
type Effect string

// The three effects a decision can have.
const (
	Allow            Effect = "allow"
	Deny             Effect = "deny"
	ApprovalRequired Effect = "approval_required"
)

// Reason is a stable, machine-readable code for why a decision came out as
// it did. Agents, audit records and spans all carry it.
type Reason string

// The reason codes. They are part of the public contract: add new ones,
// never rename.
const (
	ReasonGranted               Reason = "granted"
	ReasonApproved              Reason = "approved"
	ReasonBreakGlass            Reason = "break_glass"
	ReasonRunUnknown            Reason = "run_unknown"
	ReasonRunExpired            Reason = "run_expired"
	ReasonRunRevoked            Reason = "run_revoked"
	ReasonSponsorInactive       Reason = "sponsor_inactive"
	ReasonToolNotGranted        Reason = "tool_not_granted"
	ReasonConditionFalse        Reason = "condition_false"
	ReasonBudgetExhausted       Reason = "budget_exhausted"
	ReasonChainTooDeep          Reason = "chain_too_deep"
	ReasonApprovalRequired      Reason = "approval_required"
	ReasonApprovalDenied        Reason = "approval_denied"
	ReasonPolicyError           Reason = "policy_error"
	ReasonToolDefinitionChanged Reason = "tool_definition_changed"
	ReasonToolQuarantined       Reason = "tool_quarantined"
	ReasonUpstreamUnavailable   Reason = "upstream_unavailable"
	ReasonMalformedRequest      Reason = "malformed_request"
	ReasonUnauthenticated       Reason = "unauthenticated"
	ReasonAuditUnavailable      Reason = "audit_unavailable"
	ReasonTxnTokenInvalid       Reason = "txn_token_invalid"
)

// Kind is the kind of MCP operation a request performs.
type Kind string

// The kinds of operation that grants can cover.
const (
	KindTool       Kind = "tool"       // tools/call
	KindResource   Kind = "resource"   // resources/read and friends; Name is the URI
	KindPrompt     Kind = "prompt"     // prompts/get
	KindCompletion Kind = "completion" // completion/complete
)

// Target names what a call acts on: a tool, resource, prompt or
// completion reference on one upstream server.
type Target struct {
	Kind   Kind
	Server string // upstream tool server name from configuration
	Name   string // tool or prompt name, or resource URI; matched exactly
	// Annotations are the tool's MCP annotations as pinned at acceptance.
	Annotations map[string]any
}

// Hop is one identity of a delegation chain, from the sponsor's first run
// down to the caller.
type Hop struct {
	RunID    string // empty for a tool server hop
	Agent    string // empty for a tool server hop
	SPIFFEID string
}

// Request is one call to authorize.
type Request struct {
	// RunID is the run the caller acts as. For a chained call made by a
	// tool server, it is the run named in the transaction token.
	RunID  string
	Target Target
	// Arguments is the exact JSON of the call's arguments, never re-encoded.
	Arguments json.RawMessage
	// Via is the SPIFFE ID of a tool server that makes this call on the
	// run's behalf, with its transaction token already verified; empty for
	// a direct call by the run.
	Via string
	// ApprovalID names an approval the caller presents for this call.
	ApprovalID string
	// Now is the time of the call; zero means the run manager's clock.
	Now time.Time
}

// Decision is the outcome of Authorize.
type Decision struct {
	Effect  Effect
	Reason  Reason
	Message string // a sentence for people; never holds policy internals or secrets
	// Detail explains a policy_error to operators, such as the error of a
	// grant's condition. It goes to the audit log and the gateway's log,
	// never to the agent.
	Detail     string
	GrantID    string
	ApprovalID string
	BreakGlass bool
	// SponsorIssuer and SponsorSubject identify the human behind the chain.
	SponsorIssuer  string
	SponsorSubject string
	// Chain lists the hops from the root run to the caller. It may be
	// shared between decisions: callers must not modify it.
	Chain []Hop
}

// Allowed reports whether the call may be forwarded.
func (d Decision) Allowed() bool { return d.Effect == Allow }
