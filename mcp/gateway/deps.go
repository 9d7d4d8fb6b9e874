package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agentauth/agentauth/agentauth/authz"
)

// Authorizer decides calls. Authorize must fail closed: an internal error
// is a Deny with ReasonPolicyError. Visible reports whether a run holds any
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
// the record is durable; an error stops the call before it is forwarded.
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
	Target   authz.Target
	Decision authz.Decision
	// ArgumentsDigest is the SHA-256 of the exact argument bytes.
	ArgumentsDigest string
	Arguments       json.RawMessage // set only when configured to record arguments
	Outcome         string          // "ok", "tool_error", "error"; empty on the decision record
	Error           string
	Latency         time.Duration
	Time            time.Time
}

// JWTValidator validates a JWT-SVID presented as a bearer token for
// audience and returns its SPIFFE ID.
type JWTValidator interface {
	ValidateJWTSVID(ctx context.Context, token, audience string) (spiffeid.ID, error)
}

// Upstream is the set of tool servers the gateway forwards to.
type Upstream interface {
	// Tools returns the catalog, including changed and quarantined tools.
	Tools() []Tool
	CallTool(ctx context.Context, c ToolCall) (*mcp.CallToolResult, error)
}

// Tool is one upstream tool as exposed to agents.
type Tool struct {
	Name        string // namespaced name agents see
	Server      string // upstream server name
	Upstream    string // name on the upstream server
	Definition  mcp.Tool
	Changed     bool // definition differs from the pinned one
	Quarantined bool
}

// ToolCall is one call forwarded to a tool server.
type ToolCall struct {
	Server    string
	Tool      string
	Arguments json.RawMessage // exactly the bytes that were authorized
	Meta      map[string]any  // forwarded as params._meta
	Header    http.Header     // added to an HTTP tool server's request
	// Progress, when set, receives the upstream's progress notifications.
	Progress func(progress, total float64, message string)
}
