package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"github.com/agentauth/agentauth/traces"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentauth/agentauth/agentauth/authz"
	"github.com/agentauth/agentauth/mcp/envelope"
	"github.com/agentauth/agentauth/mcp/txntoken"
	"github.com/agentauth/agentauth/mcp/upstream"
)

// admitted is a request that passed authorization and whose decision is
// in the audit log. The tool handler forwards only what it carries.
type admitted struct {
	method    string
	exposed   string        // name or URI the client used
	tool      upstream.Tool // set for tools/call
	target    authz.Target
	arguments json.RawMessage
	digest    string                     // of arguments, for the audit records and the token
	meta      map[string]json.RawMessage // client's params._meta, by member
	decision  authz.Decision
	txn       string
	runID     string // the run the call acts for
	caller    Caller
	forwarded atomic.Bool
	end       func()     // ends its in-flight record and its client span
	client    trace.Span // span of the forwarded call, set by request
}

type admittedKey struct{}

// The values of traces.AttrForwarding.
var (
	forwardedDirectly = traces.AttrForwarding.String("direct")
	forwardedByMCP    = traces.AttrForwarding.String("mcp")
)

// serveGated authorizes a gated request, records the decision, and hands
// an allowed request to mcp-go with the decision in its context.
func (g *Gateway) serveGated(w http.ResponseWriter, r *http.Request, msg *envelope.Message, principalErr error) {
	ctx, span := g.startSpan(r, msg)
	defer span.End()
	a, data, ok := g.admit(ctx, r, msg, principalErr)
	data.TraceID = traceID(span)
	traces.RecordDecision(span, a.decision)
	for _, h := range a.decision.Chain {
		if h.RunID != "" && h.RunID == a.runID {
			span.SetAttributes(traces.AttrRunSPIFFEID.String(h.SPIFFEID))
		}
	}
	if !ok {
		span.SetStatus(codes.Error, string(a.decision.Reason))
		if data.ApprovalURL != "" && g.supportsURLElicitation(r) {
			writeApprovalURL(w, msg.ID, data)
			return
		}
		writeDenial(w, msg.ID, denialMessage(a.decision), data)
		return
	}
	ctx = context.WithValue(ctx, admittedKey{}, a)
	ru, direct := g.direct(r, msg, a)
	if a.method == "tools/call" {
		path := forwardedByMCP
		if direct {
			path = forwardedDirectly
		}
		span.SetAttributes(path)
		g.toolCalls.Add(ctx, 1, metric.WithAttributes(path))
	}
	if direct {
		g.serveDirect(ctx, w, r, msg, a, ru)
		return
	}
	g.serveMCP(w, r.WithContext(ctx))
}

// admit returns the admitted request, or the denial data when refused.
func (g *Gateway) admit(ctx context.Context, r *http.Request, msg *envelope.Message, principalErr error) (*admitted, DenialData, bool) {
	caller, _ := CallerFromContext(ctx)
	p := principalFrom(ctx)
	a := &admitted{method: msg.Method, caller: caller, runID: p.RunID, txn: newTxn(p)}
	a.meta = decodeMeta(metaRaw(msg))
	data := DenialData{RunID: p.RunID}
	switch {
	case !g.resolveTarget(a, msg):
		a.decision = g.unknownToolDecision(ctx, p, a, principalErr)
	case principalErr != nil:
		a.decision = denied(authz.ReasonTxnTokenInvalid, "invalid transaction token: "+principalErr.Error())
	default:
		a.decision = g.decide(ctx, p, a)
	}
	if err := g.appendDecision(ctx, a); err != nil {
		g.opts.Logger.Error("audit append failed; call denied", "run_id", p.RunID, "txn", a.txn, "error", err)
		a.decision = denied(authz.ReasonAuditUnavailable, "the audit log is unavailable, so no call can go ahead")
	}
	data.Reason, data.ApprovalID = a.decision.Reason, a.decision.ApprovalID
	if a.decision.Effect == authz.ApprovalRequired && g.opts.ApprovalURL != nil && a.decision.ApprovalID != "" {
		data.ApprovalURL = g.opts.ApprovalURL(a.decision.ApprovalID)
	}
	return a, data, a.decision.Allowed()
}

// auditTimeout bounds one decision append once the caller has gone away.
const auditTimeout = 5 * time.Second

// appendDecision commits the decision record. A caller that disconnects
// while waiting (for an approval, say) still leaves its decision on record.
func (g *Gateway) appendDecision(ctx context.Context, a *admitted) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	defer cancel()
	return g.opts.Auditor.AppendDecision(actx, g.record(ctx, a))
}

// argumentsDigest returns the digest of the call's arguments, computed
// once for the decision record, the token and the outcome record.
func (a *admitted) argumentsDigest() string {
	if a.digest == "" {
		a.digest = txntoken.ArgumentsDigest(a.arguments)
	}
	return a.digest
}

// resolveTarget fills a.target from the message. It returns false for a
// tool the gateway does not expose, with the target as the name reads.
func (g *Gateway) resolveTarget(a *admitted, msg *envelope.Message) bool {
	switch msg.Method {
	case "tools/call":
		name := msg.Name
		a.arguments = wireForm(msg.Arguments)
		t, ok := g.tool(name)
		if !ok || t.Status == upstream.StatusQuarantined {
			server, rest := g.splitName(name)
			a.exposed, a.target = name, authz.Target{Kind: authz.KindTool, Server: server, Name: rest}
			return false
		}
		a.exposed, a.tool = name, t.Tool
		a.target = authz.Target{Kind: authz.KindTool, Server: t.Server, Name: t.Upstream,
			Annotations: t.annotations}
	case "resources/read", "resources/subscribe":
		uri := msg.URI
		server, rest := g.splitURI(uri)
		a.exposed = uri
		a.target = authz.Target{Kind: authz.KindResource, Server: server, Name: rest}
	case "prompts/get":
		server, rest := g.splitName(msg.Name)
		a.exposed = msg.Name
		a.target = authz.Target{Kind: authz.KindPrompt, Server: server, Name: rest}
		a.arguments = rawOrEmpty(msg.Arguments)
	case "completion/complete":
		a.target = g.completionTarget(msg.Ref)
		a.arguments = completionArgument(msg.Argument)
	}
	return true
}

// decide runs authorization, waiting for a human when approval is needed.
func (g *Gateway) decide(ctx context.Context, p principal, a *admitted) authz.Decision {
	if a.tool.Status == upstream.StatusChanged {
		return denied(authz.ReasonToolDefinitionChanged,
			"the tool's definition changed since it was accepted; an operator must review and accept it")
	}
	req := authz.Request{RunID: p.RunID, Target: a.target, Arguments: a.arguments, Via: p.Via, Now: g.opts.Now()}
	d := g.opts.Authorizer.Authorize(ctx, req)
	if d.Effect != authz.ApprovalRequired || d.ApprovalID == "" || g.opts.Approvals == nil {
		return d
	}
	wctx, cancel := context.WithTimeout(ctx, g.opts.ApprovalWait)
	defer cancel()
	approved, err := g.opts.Approvals.Await(wctx, d.ApprovalID)
	switch {
	case err != nil:
		return d // still pending: the caller gets the approval id
	case !approved:
		d.Effect, d.Reason, d.Message = authz.Deny, authz.ReasonApprovalDenied, "the approval was denied"
		return d
	}
	req.ApprovalID, req.Now = d.ApprovalID, g.opts.Now()
	return g.opts.Authorizer.Authorize(ctx, req)
}

func denied(reason authz.Reason, msg string) authz.Decision {
	return authz.Decision{Effect: authz.Deny, Reason: reason, Message: msg}
}

// startSpan starts the call's span. An authenticated caller's trace
// context is continued from params._meta, else from the traceparent header.
func (g *Gateway) startSpan(r *http.Request, msg *envelope.Message) (context.Context, trace.Span) {
	ctx := r.Context()
	carrier := propagation.MapCarrier{}
	if msg.Meta != nil {
		carrier["traceparent"], carrier["tracestate"] = msg.Meta.Traceparent, msg.Meta.Tracestate
	}
	if carrier["traceparent"] != "" {
		ctx = g.prop.Extract(ctx, carrier)
	} else {
		ctx = g.prop.Extract(ctx, propagation.HeaderCarrier(r.Header))
	}
	target := msg.Name
	if target == "" {
		target = msg.URI
	}
	caller, _ := CallerFromContext(ctx)
	p := principalFrom(ctx)
	attrs := traces.Request{
		Method:          msg.Method,
		Target:          target,
		RequestID:       strings.Trim(string(msg.ID), `"`),
		SessionID:       r.Header.Get(headerSession),
		ProtocolVersion: r.Header.Get("Mcp-Protocol-Version"),
		Transport:       traces.TransportTCP,
	}.Attributes()
	attrs = append(attrs,
		attribute.String("agentauth.caller", caller.ID.String()),
		traces.AttrRunID.String(p.RunID),
	)
	if p.Via == "" {
		attrs = append(attrs, traces.AttrRunSPIFFEID.String(caller.ID.String()))
	}
	return g.opts.Tracer.Start(ctx, traces.SpanName(msg.Method, target),
		trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
}

func traceID(span trace.Span) string {
	if sc := span.SpanContext(); sc.HasTraceID() {
		return sc.TraceID().String()
	}
	return ""
}

func (g *Gateway) record(ctx context.Context, a *admitted) Record {
	sc := trace.SpanFromContext(ctx).SpanContext()
	rec := Record{
		Txn: a.txn, RunID: a.runID, Method: a.method,
		Caller: a.caller.ID.String(), Target: a.target, Decision: a.decision,
		ArgumentsDigest: a.argumentsDigest(), Arguments: a.arguments,
		Time: g.opts.Now(),
	}
	if sc.IsValid() {
		rec.TraceID, rec.SpanID = sc.TraceID().String(), sc.SpanID().String()
	}
	return rec
}

func newTxn(p principal) string {
	if p.Txn != nil {
		return p.Txn.Txn
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func metaRaw(m *envelope.Message) json.RawMessage {
	if m.Meta == nil {
		return nil
	}
	return m.Meta.Raw
}

func rawOrEmpty(v json.RawMessage) json.RawMessage {
	if len(v) == 0 || string(v) == "null" {
		return json.RawMessage("{}")
	}
	return v
}

// wireForm returns tool arguments as the MCP client sends them upstream:
// compact, with <, > and & escaped, which is how encoding/json writes a
// raw message. Authorizing, auditing and digesting that form makes the
// transaction token's digest match the bytes the tool server receives.
func wireForm(v json.RawMessage) json.RawMessage {
	v = rawOrEmpty(v)
	wire, err := json.Marshal(v)
	if err != nil {
		return v // the envelope decoder checked v, and the transport rejects it again
	}
	return wire
}

// decodeMeta splits a _meta object, which the envelope decoder has
// checked, into its members with their exact bytes.
func decodeMeta(v json.RawMessage) map[string]json.RawMessage {
	if len(v) == 0 {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(v, &m) != nil {
		return nil
	}
	return m
}

func annotations(t upstream.Tool) map[string]any {
	raw, err := json.Marshal(t.Definition.Annotations)
	if err != nil {
		return nil
	}
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return m
}

// splitName undoes "<server>__<name>", or names the unprefixed server.
func (g *Gateway) splitName(s string) (string, string) {
	if g.opts.Unprefixed != "" {
		return g.opts.Unprefixed, s
	}
	server, name, ok := upstream.SplitName(s)
	if !ok {
		return "", s
	}
	return server, name
}

// splitURI undoes "agentauth://<server>/<original-uri>", or names the
// unprefixed server.
func (g *Gateway) splitURI(uri string) (string, string) {
	if g.opts.Unprefixed != "" {
		return g.opts.Unprefixed, uri
	}
	server, orig, ok := upstream.SplitURI(uri)
	if !ok {
		return "", uri
	}
	return server, orig
}

func (g *Gateway) completionTarget(ref *envelope.Ref) authz.Target {
	t := authz.Target{Kind: authz.KindCompletion}
	switch {
	case ref == nil:
	case ref.Type == "ref/resource":
		t.Server, t.Name = g.splitURI(ref.URI)
	default:
		t.Server, t.Name = g.splitName(ref.Name)
	}
	return t
}

func completionArgument(a *envelope.CompletionArgument) json.RawMessage {
	if a == nil {
		return json.RawMessage("{}")
	}
	raw, _ := json.Marshal(map[string]string{"name": a.Name, "value": a.Value})
	return raw
}
