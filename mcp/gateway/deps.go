package gateway

import (
	"context"
	"encoding/json"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agentauth/agentauth/agentauth/authz"
	"github.com/agentauth/agentauth/mcp/upstream"
)

// Authorizer decides calls. Authorize must fail closed: an internal error
// is a Deny with ReasonPolicyError. A Request with a zero Target must be
// denied without consuming anything, with the sponsor and chain of the run
// filled when the run is known: the gateway asks that to put the chain on
// the records of requests it refuses itself. Visible reports whether a run holds any
// grant that could cover target; it decides what tools/list shows and never
// consumes a budget.
type Authorizer interface {
	Authorize(ctx context.Context, r authz.Request) authz.Decision
	Visible(ctx context.Context, runID string, target authz.Target) bool
}

// Approvals waits for a human to decide a pending approval. Await returns
// true when it was approved, false when it was denied, and ctx's error when
// the wait ran out first.
type Approvals interface {
	Await(ctx context.Context, approvalID string) (bool, error)
}

// Auditor hands records to the audit log. AppendDecision returns only once
// the record would survive the gateway being killed; an error stops the
// call before it is forwarded.
// AppendDecision also receives the record of every malformed request from
// an authenticated caller (Record.Malformed set), before it is answered.
type Auditor interface {
	AppendDecision(ctx context.Context, r Record) error
	AppendOutcome(ctx context.Context, r Record) error
}

// Record is one audit entry written by the gateway: the decision before a
// call is forwarded, and again with Outcome and Latency after it returns.
type Record struct {
	Txn      string
	TraceID  string
	Method   string
	Caller   string // SPIFFE ID of the direct caller
	RunID    string // the run the call acts for
	SpanID   string
	Target   authz.Target
	Decision authz.Decision
	// ArgumentsDigest is the SHA-256 of the exact argument bytes.
	ArgumentsDigest string
	// Arguments are the exact argument bytes; the audit log keeps them,
	// redacted, only when configured to, and always keeps their digest.
	Arguments json.RawMessage
	// Outcome is "ok", "tool_error", "unavailable" or "canceled" (the
	// words of audit.Outcome); empty on the decision record.
	Outcome string
	Error   string
	// Malformed marks the record of a request refused before
	// authorization because its body or headers were invalid. Its
	// Decision holds the sponsor, the chain, reason malformed_request and
	// the error message; Arguments and Target are empty.
	Malformed bool
	Latency   time.Duration
	Time      time.Time
}

// JWTValidator validates a JWT-SVID presented as a bearer token for
// audience and returns its SPIFFE ID.
type JWTValidator interface {
	ValidateJWTSVID(ctx context.Context, token, audience string) (spiffeid.ID, error)
}

// Upstream is the set of tool servers the gateway forwards to;
// *upstream.Set implements it.
type Upstream interface {
	// Catalog returns every tool (changed and quarantined included),
	// prompt, resource and resource template of the servers that are up.
	Catalog() upstream.Catalog
	CallTool(ctx context.Context, r upstream.Request) (*mcp.CallToolResult, error)
	GetPrompt(ctx context.Context, r upstream.Request) (*mcp.GetPromptResult, error)
	ReadResource(ctx context.Context, r upstream.Request) (*mcp.ReadResourceResult, error)
	Complete(ctx context.Context, r upstream.Request, p mcp.CompleteParams) (*mcp.CompleteResult, error)
}
