package jaegertest_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/agentauth/agentauth/agentauth/authz"
	"github.com/agentauth/agentauth/traces"
	"github.com/agentauth/agentauth/traces/jaegertest"
)

// hop carries a request's params._meta from one process to the next as
// JSON, as an MCP request does.
func hop(t *testing.T, ctx context.Context) []byte {
	t.Helper()
	meta := traces.InjectIntoMeta(ctx, map[string]any{"progressToken": 1})
	raw, err := json.Marshal(meta)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func newTelemetry(t *testing.T, service string) *traces.Telemetry {
	t.Helper()
	tel, err := traces.New(context.Background(), service, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !tel.Exporting() {
		t.Fatal("telemetry does not export with the Jaeger environment set")
	}
	return tel
}

// emitChain emits agent -> gateway -> tool server spans for one call,
// each process with its own provider, and returns the trace id.
func emitChain(t *testing.T) string {
	ctx := context.Background()
	agent, gateway, tool := newTelemetry(t, "agent-sim"), newTelemetry(t, "agentauth-gw"), newTelemetry(t, "tool-fs")
	call := traces.Request{Method: traces.MethodToolsCall, Target: "read_file", RequestID: "7",
		ProtocolVersion: "2025-11-25", Transport: traces.TransportTCP}
	name := traces.SpanName(call.Method, call.Target)

	actx, aspan := agent.Tracer().Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(call.Attributes()...))
	toGateway := hop(t, actx)

	gctx := traces.ExtractFromMetaJSON(ctx, toGateway)
	gctx, gspan := gateway.Tracer().Start(gctx, name, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(call.Attributes()...))
	traces.RecordDecision(gspan, authz.Decision{
		Effect: authz.Allow, Reason: authz.ReasonGranted, GrantID: "fs-read",
		SponsorIssuer: "https://idp.example.com", SponsorSubject: "alice",
		Chain: []authz.Hop{
			{RunID: "R1", Agent: "researcher", SPIFFEID: "spiffe://td/agents/researcher/runs/R1"},
			{RunID: "C1", Agent: "summarizer", SPIFFEID: "spiffe://td/agents/summarizer/runs/C1"},
		},
	})
	uctx, uspan := gateway.Tracer().Start(gctx, name, trace.WithSpanKind(trace.SpanKindClient))
	toTool := hop(t, uctx)

	tctx := traces.ExtractFromMetaJSON(ctx, toTool)
	_, tspan := tool.Tracer().Start(tctx, name, trace.WithSpanKind(trace.SpanKindServer))
	traces.RecordError(tspan, traces.ErrorTypeToolError, "file not found")

	tspan.End()
	uspan.End()
	gspan.End()
	aspan.End()
	for _, tel := range []*traces.Telemetry{agent, gateway, tool} {
		if err := tel.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	}
	return aspan.SpanContext().TraceID().String()
}

func TestChainAcrossHopsInJaeger(t *testing.T) {
	j := jaegertest.Start(t)
	for _, protocol := range []string{"grpc", "http/protobuf"} {
		t.Run(protocol, func(t *testing.T) {
			j.Setenv(t, protocol)
			traceID := emitChain(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			tr, err := j.WaitForTrace(ctx, traceID, 4)
			if err != nil {
				t.Fatal(err)
			}
			checkChain(t, tr)
		})
	}
}

func checkChain(t *testing.T, tr jaegertest.Trace) {
	t.Helper()
	if len(tr.Spans) != 4 {
		t.Fatalf("trace has %d spans, want 4", len(tr.Spans))
	}
	roots := tr.Roots()
	if len(roots) != 1 || roots[0].Service != "agent-sim" || roots[0].Kind != "client" {
		t.Fatalf("roots = %+v, want the agent's client span", roots)
	}
	want := []struct{ service, kind string }{
		{"agentauth-gw", "server"}, {"agentauth-gw", "client"}, {"tool-fs", "server"},
	}
	parent := roots[0]
	var gw jaegertest.Span
	for i, w := range want {
		kids := tr.Children(parent.SpanID)
		if len(kids) != 1 || kids[0].Service != w.service || kids[0].Kind != w.kind {
			t.Fatalf("hop %d: children of %s/%s = %+v, want one %s %s span", i, parent.Service, parent.Kind, kids, w.service, w.kind)
		}
		if kids[0].Name != "tools/call read_file" {
			t.Errorf("span name = %q", kids[0].Name)
		}
		if i == 0 {
			gw = kids[0]
		}
		parent = kids[0]
	}

	checks := map[string]string{
		"mcp.method.name": "tools/call", "gen_ai.tool.name": "read_file", "gen_ai.operation.name": "execute_tool",
		"jsonrpc.request.id": "7", "mcp.protocol.version": "2025-11-25",
		"agentauth.decision": "allow", "agentauth.decision.reason": "granted", "agentauth.grant.id": "fs-read",
		"agentauth.sponsor.subject": "alice", "agentauth.run.id": "C1",
	}
	for k, v := range checks {
		if got := gw.String(k); got != v {
			t.Errorf("gateway span %s = %q, want %q", k, got, v)
		}
	}
	chain := gw.StringSlice("agentauth.chain")
	if len(chain) != 2 || chain[1] != "spiffe://td/agents/summarizer/runs/C1" {
		t.Errorf("agentauth.chain = %v", chain)
	}
	if gw.Int("agentauth.chain.depth") != 2 {
		t.Errorf("agentauth.chain.depth = %v", gw.Attributes["agentauth.chain.depth"])
	}
	if len(gw.Events) != 1 || gw.Events[0].Name != "agentauth.decision" {
		t.Errorf("gateway events = %+v", gw.Events)
	}
	if parent.StatusCode != "error" || parent.String("error.type") != "tool_error" {
		t.Errorf("tool span status %s, error.type %q", parent.StatusCode, parent.String("error.type"))
	}
}

func TestServicesAndSearch(t *testing.T) {
	j := jaegertest.Start(t)
	j.Setenv(t, "http/protobuf")
	tel := newTelemetry(t, "search-sim")
	for range 3 {
		_, s := tel.Tracer().Start(context.Background(), "tools/list")
		s.End()
	}
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	found, err := j.WaitForSpans(ctx, "search-sim", 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 3 {
		t.Errorf("found %d traces, want 3 single-span traces", len(found))
	}
	services, err := j.Services(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(services) != 1 || services[0] != "search-sim" {
		t.Errorf("services = %v", services)
	}
	none, err := j.Traces(ctx, "nobody")
	if err != nil || len(none) != 0 {
		t.Errorf("Traces(nobody) = %v, %v", none, err)
	}
}
