package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/metric"

	"github.com/agentauth/agentauth/agentauth/authz"
	"github.com/agentauth/agentauth/mcp/envelope"
)

// MetricUnauthenticated counts requests refused for want of a valid
// credential. They never reach the audit log, so that a flood of them
// cannot fill it.
const MetricUnauthenticated = "agentauth.gateway.unauthenticated"

// MetricMalformed counts malformed requests from authenticated callers.
// Each of them also has an audit record.
const MetricMalformed = "agentauth.gateway.malformed"

// Bounds on what an audit record repeats of a refused request.
const (
	maxAuditMessage = 512
	maxAuditMethod  = 128
)

// refusals counts refused requests and rate-limits their log lines.
type refusals struct {
	unauthenticated metric.Int64Counter
	malformed       metric.Int64Counter
	log             logLimiter
}

func newRefusals(mp metric.MeterProvider) (*refusals, error) {
	meter := mp.Meter("github.com/agentauth/agentauth/mcp/gateway")
	var r refusals
	var err1, err2 error
	r.unauthenticated, err1 = meter.Int64Counter(MetricUnauthenticated, metric.WithUnit("{request}"),
		metric.WithDescription("Requests refused because the caller presented no valid SVID."))
	r.malformed, err2 = meter.Int64Counter(MetricMalformed, metric.WithUnit("{request}"),
		metric.WithDescription("Malformed requests from authenticated callers, each with an audit record."))
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("gateway: metrics: %w", err)
	}
	r.log.every = time.Second
	return &r, nil
}

// refuseUnauthenticated rejects a request without a valid credential. It
// is counted and logged at most once a second, never audited.
func (g *Gateway) refuseUnauthenticated(w http.ResponseWriter, r *http.Request, err error) {
	g.refused.unauthenticated.Add(r.Context(), 1)
	if ok, suppressed := g.refused.log.allow(g.opts.Now()); ok {
		g.opts.Logger.Info("rejected unauthenticated request", "remote", r.RemoteAddr, "error", err,
			"suppressed_since_last", suppressed)
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="agentauth"`)
	writeStatusDenial(w, http.StatusUnauthorized, err.Error(), DenialData{Reason: authz.ReasonUnauthenticated})
}

// refuseMalformed records a malformed request of an authenticated caller
// in the audit log, then rejects it. msg is nil when the body could not
// be decoded.
func (g *Gateway) refuseMalformed(w http.ResponseWriter, r *http.Request, msg *envelope.Message, err error) {
	ctx := r.Context()
	g.refused.malformed.Add(ctx, 1)
	method := ""
	var ee *envelope.Error
	switch {
	case msg != nil:
		method = msg.Method
	case errors.As(err, &ee):
		method = ee.Method
	}
	rec := g.malformedRecord(ctx, truncate(method, maxAuditMethod), err)
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	defer cancel()
	if aerr := g.opts.Auditor.AppendDecision(actx, rec); aerr != nil {
		g.opts.Logger.Error("audit append of a malformed request failed", "run_id", rec.RunID, "error", aerr)
	}
	var id json.RawMessage
	if msg != nil {
		id = msg.ID // the body decoded, only its headers disagreed with it
	}
	writeMalformed(w, id, err)
}

// malformedRecord is the audit record of a malformed request: who sent
// it, the method when known, and why it was refused. It holds nothing of
// the body.
func (g *Gateway) malformedRecord(ctx context.Context, method string, err error) Record {
	caller, _ := CallerFromContext(ctx)
	p := principalFrom(ctx)
	d := g.chainDecision(ctx, p, caller)
	d.Effect, d.Reason = authz.Deny, authz.ReasonMalformedRequest
	d.Message = truncate("malformed request: "+err.Error(), maxAuditMessage)
	d.GrantID, d.ApprovalID = "", ""
	return Record{Txn: newTxn(p), Method: method, Caller: caller.ID.String(), RunID: p.RunID,
		Decision: d, Malformed: true, Time: g.opts.Now()}
}

// chainDecision calls the Authorizer with a zero Target, which it denies
// without side effects, to learn the sponsor and delegation chain of the
// run p acts for. When the run is unknown the chain is the caller alone.
func (g *Gateway) chainDecision(ctx context.Context, p principal, caller Caller) authz.Decision {
	var d authz.Decision
	if p.RunID != "" {
		d = g.opts.Authorizer.Authorize(ctx, authz.Request{RunID: p.RunID, Via: p.Via, Now: g.opts.Now()})
	}
	if len(d.Chain) == 0 {
		d.Chain = []authz.Hop{{RunID: caller.RunID, Agent: caller.Agent, SPIFFEID: caller.ID.String()}}
	}
	return d
}

// unknownToolDecision denies a call to a tool the gateway does not expose
// (unknown, or quarantined) exactly as it denies one the run holds no
// grant for, so that the denial does not reveal whether the tool exists. A
// run that may not call anything gets the same run-level reason as for
// any tool.
func (g *Gateway) unknownToolDecision(ctx context.Context, p principal, a *admitted, principalErr error) authz.Decision {
	if principalErr != nil {
		return denied(authz.ReasonTxnTokenInvalid, "invalid transaction token: "+principalErr.Error())
	}
	d := g.chainDecision(ctx, p, a.caller)
	d.Effect, d.GrantID, d.ApprovalID = authz.Deny, "", ""
	switch d.Reason {
	case authz.ReasonRunUnknown, authz.ReasonRunExpired, authz.ReasonRunRevoked,
		authz.ReasonSponsorInactive, authz.ReasonChainTooDeep, authz.ReasonUnauthenticated:
		return d
	}
	d.Reason = authz.ReasonToolNotGranted
	d.Message = fmt.Sprintf("no grant of run %s covers %s %q on server %q",
		p.RunID, a.target.Kind, a.target.Name, a.target.Server)
	return d
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// logLimiter lets one line through per period and counts the rest.
type logLimiter struct {
	mu         sync.Mutex
	every      time.Duration
	last       time.Time
	suppressed int
}

// allow reports whether a line may be logged now, and how many were
// suppressed since the last one.
func (l *logLimiter) allow(now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.suppressed++
		return false, 0
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	return true, n
}
