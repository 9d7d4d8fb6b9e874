package gateway

import (
	"context"

	"github.com/agentauth/agentauth/agentauth/audit"
)

// AuditLog returns an Auditor that appends to the tamper-evident audit
// log. AppendDecision returns once the record is written to the log's
// journal (and fdatasynced with audit.sync full); it reaches the SQLite
// file a few milliseconds later.
func AuditLog(l *audit.Log) Auditor { return auditLog{l} }

type auditLog struct{ l *audit.Log }

// AppendDecision writes the decision record of one call, or the record
// of a malformed request.
func (a auditLog) AppendDecision(ctx context.Context, r Record) error {
	kind := audit.KindDecision
	if r.Malformed {
		kind = audit.KindMalformedRequest
	}
	_, err := a.l.Append(ctx, toAudit(r, kind))
	return err
}

// AppendOutcome writes the upstream outcome of one forwarded call.
func (a auditLog) AppendOutcome(ctx context.Context, r Record) error {
	rec := toAudit(r, audit.KindCallResult)
	rec.Outcome, rec.Latency = audit.Outcome(r.Outcome), r.Latency
	_, err := a.l.Append(context.WithoutCancel(ctx), rec)
	return err
}

func toAudit(r Record, kind audit.Kind) audit.Record {
	d := r.Decision
	// The operator-only detail of a policy error belongs in the audit
	// record, which the agent never reads; the agent saw only Message.
	msg := d.Message
	if d.Detail != "" {
		msg += " (" + d.Detail + ")"
	}
	return audit.Record{
		Time: r.Time, Kind: kind, Effect: d.Effect, Reason: d.Reason, Message: msg,
		SponsorIssuer: d.SponsorIssuer, SponsorSubject: d.SponsorSubject, Chain: d.Chain,
		RunID: r.RunID, Method: r.Method, TargetKind: r.Target.Kind, Server: r.Target.Server,
		Tool: r.Target.Name, Arguments: r.Arguments, ArgumentsDigest: r.ArgumentsDigest,
		GrantID: d.GrantID, ApprovalID: d.ApprovalID, BreakGlass: d.BreakGlass,
		TraceID: r.TraceID, SpanID: r.SpanID,
	}
}
