package control

import (
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentauth/agentauth/agentauth/control/api"
	"github.com/agentauth/agentauth/traces"
)

// startSpan starts the server span of one control API request. Trace
// context in the traceparent header is continued only for an
// authenticated caller (c not empty), so that an anonymous request cannot
// graft itself onto someone else's trace.
func startSpan(r *http.Request, rt route, c caller) (*http.Request, trace.Span) {
	ctx := r.Context()
	if c.sponsor != nil || c.agent != nil {
		ctx = traces.ExtractFromHTTP(ctx, r.Header)
	}
	attrs := []attribute.KeyValue{
		attribute.String("http.request.method", rt.Method),
		attribute.String("http.route", rt.Path),
	}
	switch {
	case c.sponsor != nil:
		attrs = append(attrs, traces.AttrSponsorIssuer.String(c.sponsor.Issuer),
			traces.AttrSponsorSubject.String(c.sponsor.Subject))
	case c.agent != nil:
		attrs = append(attrs, traces.AttrRunID.String(c.agent.RunID),
			traces.AttrRunSPIFFEID.String(c.agent.ID.String()), traces.AttrAgent.String(c.agent.Agent))
	}
	ctx, span := traces.Tracer().Start(ctx, rt.Method+" "+rt.Path,
		trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
	return r.WithContext(ctx), span
}

// recordRun adds a new run's identity to the request's span.
func recordRun(r *http.Request, run api.Run) {
	span := trace.SpanFromContext(r.Context())
	span.SetAttributes(
		attribute.String("agentauth.new_run.id", run.ID),
		attribute.String("agentauth.new_run.spiffe_id", run.SPIFFEID),
		attribute.String("agentauth.new_run.agent", run.Agent),
		traces.AttrChainDepth.Int(len(run.Chain)),
	)
	chain := make([]string, 0, len(run.Chain))
	for _, h := range run.Chain {
		chain = append(chain, h.SPIFFEID)
	}
	if len(chain) > 0 {
		span.SetAttributes(traces.AttrChain.StringSlice(chain))
	}
}
