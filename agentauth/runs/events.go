package runs

import (
	"context"
	"time"
)

// EventType names a change the audit log records.
type EventType string

// The events a Manager reports to its Recorder.
const (
	EventRunStarted         EventType = "run_started"
	EventRunStartRejected   EventType = "run_start_rejected"
	EventRunDelegated       EventType = "run_delegated"
	EventEscalationRejected EventType = "delegation_escalation_rejected"
	EventRunRevoked         EventType = "run_revoked"
	EventSponsorDeactivated EventType = "sponsor_deactivated"
	EventSponsorReactivated EventType = "sponsor_reactivated"
	EventBreakGlassStarted  EventType = "break_glass_started"
	EventBreakGlassRejected EventType = "break_glass_rejected"
	EventApprovalRequested  EventType = "approval_requested"
	EventApprovalApproved   EventType = "approval_approved"
	EventApprovalDenied     EventType = "approval_denied"
	EventApprovalRejected   EventType = "approval_decision_rejected"
	EventApprovalUsed       EventType = "approval_used"
)

// Event is one change to runs, sponsors or approvals.
type Event struct {
	Type EventType
	Time time.Time
	// Actor is the human who caused the event, when one did.
	Actor *Sponsor
	// Sponsor is the human behind the run concerned.
	Sponsor    *Sponsor
	RunID      string
	ParentID   string
	Agent      string
	SPIFFEID   string
	GrantIDs   []string
	ApprovalID string
	// RunIDs lists every run a revocation or deactivation stopped.
	RunIDs  []string
	Message string
}

// Recorder receives every event. The audit log implements it. Record must
// not block for long; it runs with the Manager's lock released.
type Recorder interface {
	Record(ctx context.Context, e Event)
}

// RecorderFunc adapts a function to Recorder.
type RecorderFunc func(ctx context.Context, e Event)

// Record calls f.
func (f RecorderFunc) Record(ctx context.Context, e Event) { f(ctx, e) }

type nopRecorder struct{}

func (nopRecorder) Record(context.Context, Event) {}
