package server

import (
	"context"
	"log/slog"

	"github.com/agentauth/agentauth/agentauth/audit"
	"github.com/agentauth/agentauth/agentauth/authz"
	"github.com/agentauth/agentauth/agentauth/runs"
)

// eventRecorder writes the run manager's events to the audit log.
type eventRecorder struct {
	log    *audit.Log
	logger *slog.Logger
	// runs looks up the chain of the run an event concerns; set once the
	// manager is open, since the manager needs the recorder first.
	runs *runs.Manager
}

// eventKinds maps each run event to the audit record kind that holds it.
var eventKinds = map[runs.EventType]audit.Kind{
	runs.EventRunStarted:         audit.KindRunStart,
	runs.EventRunStartRejected:   audit.KindRunStart,
	runs.EventRunDelegated:       audit.KindDelegation,
	runs.EventEscalationRejected: audit.KindEscalation,
	runs.EventRunRevoked:         audit.KindRevocation,
	runs.EventSponsorDeactivated: audit.KindSponsorDeactivation,
	runs.EventSponsorReactivated: audit.KindSponsorDeactivation,
	runs.EventBreakGlassStarted:  audit.KindBreakGlass,
	runs.EventBreakGlassRejected: audit.KindBreakGlass,
	runs.EventApprovalRequested:  audit.KindApproval,
	runs.EventApprovalApproved:   audit.KindApproval,
	runs.EventApprovalDenied:     audit.KindApproval,
	runs.EventApprovalRejected:   audit.KindApproval,
	runs.EventApprovalUsed:       audit.KindApproval,
}

// rejected lists the events that record a refusal.
var rejected = map[runs.EventType]bool{
	runs.EventRunStartRejected:   true,
	runs.EventEscalationRejected: true,
	runs.EventBreakGlassRejected: true,
	runs.EventApprovalRejected:   true,
	runs.EventApprovalDenied:     true,
}

// Record appends the event. The manager has already committed the change,
// so a failed append is logged and counted by the audit log, not returned.
func (r *eventRecorder) Record(ctx context.Context, e runs.Event) {
	kind, ok := eventKinds[e.Type]
	if !ok {
		r.logger.Warn("run event has no audit kind", "event", e.Type, "run", e.RunID)
		return
	}
	rec := audit.Record{
		Time:       e.Time,
		Kind:       kind,
		Effect:     authz.Allow,
		Message:    string(e.Type) + eventMessage(e),
		RunID:      e.RunID,
		ApprovalID: e.ApprovalID,
		BreakGlass: kind == audit.KindBreakGlass,
	}
	if rejected[e.Type] {
		rec.Effect = authz.Deny
	}
	if e.Sponsor != nil {
		rec.SponsorIssuer, rec.SponsorSubject = e.Sponsor.Issuer, e.Sponsor.Subject
	}
	if e.Actor != nil {
		rec.ActorIssuer, rec.ActorSubject = e.Actor.Issuer, e.Actor.Subject
	}
	if e.RunID != "" {
		rec.Chain = r.chain(ctx, e)
		rec.ParentRunID = e.ParentID
	}
	if _, err := r.log.Append(ctx, rec); err != nil {
		r.logger.Error("audit append failed for run event", "event", e.Type, "run", e.RunID, "err", err)
	}
}

func eventMessage(e runs.Event) string {
	if e.Message == "" {
		return ""
	}
	return ": " + e.Message
}

// chain returns the delegation chain of the event's run, from the root run
// down, or the run alone when the chain cannot be read.
func (r *eventRecorder) chain(ctx context.Context, e runs.Event) []authz.Hop {
	if r.runs != nil {
		if list, err := r.runs.GetChain(ctx, e.RunID); err == nil && len(list) > 0 {
			hops := make([]authz.Hop, 0, len(list))
			for _, run := range list {
				hops = append(hops, authz.Hop{RunID: run.ID, Agent: run.Agent, SPIFFEID: run.SPIFFEID})
			}
			return hops
		}
	}
	return []authz.Hop{{RunID: e.RunID, Agent: e.Agent, SPIFFEID: e.SPIFFEID}}
}
