package audit

import (
	"encoding/json"
	"time"

	"github.com/agentauth/agentauth/agentauth/authz"
)

// Kind says what happened in the event a record describes.
type Kind string

// The kinds of record. They are part of the stored format: add new ones,
// never rename.
const (
	// KindDecision is an authorization decision on one call: allow, deny
	// or approval_required.
	KindDecision Kind = "decision"
	// KindApproval is a human's decision on a pending approval.
	KindApproval Kind = "approval"
	// KindRunStart is the start of a run by its sponsor.
	KindRunStart Kind = "run_start"
	// KindDelegation is a run starting a child run.
	KindDelegation Kind = "delegation"
	// KindEscalation is an attempt to obtain more authority than the
	// parent hop holds, such as a child run asking for a grant its parent
	// lacks.
	KindEscalation Kind = "escalation"
	// KindRevocation is the revocation of a run and its descendants.
	KindRevocation Kind = "revocation"
	// KindSponsorDeactivation is the offboarding of a sponsor.
	KindSponsorDeactivation Kind = "sponsor_deactivation"
	// KindBreakGlass is the opening or use of a break-glass grant.
	KindBreakGlass Kind = "break_glass"
	// KindMalformedRequest is a request rejected before authorization
	// because it could not be decoded or validated.
	KindMalformedRequest Kind = "malformed_request"
	// KindCallResult is the upstream outcome of a forwarded call.
	KindCallResult Kind = "call_result"
)

var knownKinds = map[Kind]bool{
	KindDecision: true, KindApproval: true, KindRunStart: true,
	KindDelegation: true, KindEscalation: true, KindRevocation: true,
	KindSponsorDeactivation: true, KindBreakGlass: true,
	KindMalformedRequest: true, KindCallResult: true,
}

// Valid reports whether k is one of the defined kinds.
func (k Kind) Valid() bool { return knownKinds[k] }

// Outcome is the upstream result of a forwarded call.
type Outcome string

// The upstream outcomes of a call. ErrorType in the semantic conventions
// for MCP uses the same words where they overlap.
const (
	OutcomeOK          Outcome = "ok"          // a result without isError
	OutcomeToolError   Outcome = "tool_error"  // a result with isError set
	OutcomeRPCError    Outcome = "rpc_error"   // a JSON-RPC error response
	OutcomeUnavailable Outcome = "unavailable" // transport failure or upstream down
	OutcomeTimeout     Outcome = "timeout"     // no response before the deadline
	OutcomeCanceled    Outcome = "canceled"    // the caller went away
)

// Why arguments of a record were not kept even though recording them is
// configured. The digest is always kept.
const (
	ArgumentsTooLarge    = "too_large"
	ArgumentsInvalidJSON = "invalid_json"
)

// Record is one entry of the audit log. The caller fills the event fields;
// Append fills Seq, PrevHash, Hash, ArgumentsDigest, and Time when zero.
type Record struct {
	// Seq numbers records from 1 without gaps.
	Seq uint64
	// PrevHash is the hex SHA-256 of the previous record's canonical
	// encoding, or the anchor hash for the first record kept.
	PrevHash string
	// Hash is the hex SHA-256 of this record's canonical encoding.
	Hash string

	Time    time.Time
	Kind    Kind
	Effect  authz.Effect
	Reason  authz.Reason
	Message string

	// SponsorIssuer and SponsorSubject identify the human behind the chain.
	SponsorIssuer  string
	SponsorSubject string
	// ActorIssuer and ActorSubject identify the human who acted when that
	// is not the sponsor: the approver, or the admin who revoked a run.
	ActorIssuer  string
	ActorSubject string

	// Chain holds every identity of the delegation chain, from the
	// sponsor's first run down to the caller.
	Chain []authz.Hop
	// RunID is the run that acted. ParentRunID and RootRunID place it in
	// its delegation tree; Append derives all three from Chain when empty.
	RunID       string
	ParentRunID string
	RootRunID   string

	// Method is the MCP method, such as tools/call.
	Method     string
	TargetKind authz.Kind
	Server     string // upstream tool server name from configuration
	Tool       string // tool or prompt name, or resource URI

	// Arguments is the exact JSON of the call's arguments as the caller
	// passes it to Append. Append always stores its SHA-256 in
	// ArgumentsDigest and keeps the arguments, redacted, only when the
	// log records arguments.
	Arguments        json.RawMessage
	ArgumentsDigest  string
	ArgumentsOmitted string // ArgumentsTooLarge or ArgumentsInvalidJSON

	GrantID    string
	ApprovalID string
	BreakGlass bool

	// TraceID and SpanID are the hex W3C trace context of the call's span.
	TraceID string
	SpanID  string

	Outcome Outcome
	Latency time.Duration
}
