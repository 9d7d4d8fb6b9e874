package traces

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/agentauth/agentauth/agentauth/authz"
)

func TestSpanName(t *testing.T) {
	cases := []struct{ method, target, want string }{
		{"tools/call", "get-weather", "tools/call get-weather"},
		{"prompts/get", "analyze-code", "prompts/get analyze-code"},
		{"resources/read", "file:///etc/hosts", "resources/read"},
		{"tools/list", "", "tools/list"},
		{"tools/call", "", "tools/call"},
	}
	for _, c := range cases {
		if got := SpanName(c.method, c.target); got != c.want {
			t.Errorf("SpanName(%q, %q) = %q, want %q", c.method, c.target, got, c.want)
		}
	}
}

func recorder() (*tracetest.SpanRecorder, trace.Tracer) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	return sr, tp.Tracer("test")
}

func attrMap(kvs []attribute.KeyValue) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}

func TestRequestAttributes(t *testing.T) {
	r := Request{Method: MethodToolsCall, Target: "echo", RequestID: "7", SessionID: "s1",
		ProtocolVersion: "2025-11-25", Transport: TransportTCP, ClientAddress: "127.0.0.1", ClientPort: 50000}
	got := attrMap(r.Attributes())
	want := map[attribute.Key]string{
		AttrMCPMethodName: "tools/call", AttrGenAIToolName: "echo", AttrGenAIOperationName: "execute_tool",
		AttrJSONRPCRequestID: "7", AttrMCPSessionID: "s1", AttrMCPProtocolVersion: "2025-11-25",
		AttrNetworkTransport: "tcp", AttrClientAddress: "127.0.0.1",
	}
	for k, v := range want {
		if got[k].AsString() != v {
			t.Errorf("%s = %q, want %q", k, got[k].AsString(), v)
		}
	}
	if got[AttrClientPort].AsInt64() != 50000 {
		t.Errorf("client.port = %v", got[AttrClientPort])
	}
	list := attrMap(Request{Method: "tools/list"}.Attributes())
	if _, ok := list[AttrGenAIOperationName]; ok {
		t.Error("gen_ai.operation.name set on tools/list")
	}
	if _, ok := list[AttrJSONRPCRequestID]; ok {
		t.Error("jsonrpc.request.id set without an id")
	}
	res := attrMap(Request{Method: "resources/read", Target: "file:///x"}.Attributes())
	if res[AttrMCPResourceURI].AsString() != "file:///x" {
		t.Error("mcp.resource.uri missing on resources/read")
	}
}

func threeHopDecision() authz.Decision {
	return authz.Decision{
		Effect: authz.Deny, Reason: authz.ReasonConditionFalse, Message: "path is outside /data",
		GrantID: "fs-read", ApprovalID: "ap-1", BreakGlass: true,
		SponsorIssuer: "https://idp.example.com", SponsorSubject: "alice",
		Chain: []authz.Hop{
			{RunID: "R1", Agent: "researcher", SPIFFEID: "spiffe://td/agents/researcher/runs/R1"},
			{RunID: "C1", Agent: "summarizer", SPIFFEID: "spiffe://td/agents/summarizer/runs/C1"},
			{SPIFFEID: "spiffe://td/tools/fs"},
		},
	}
}

func TestRecordDecision(t *testing.T) {
	sr, tr := recorder()
	_, span := tr.Start(context.Background(), "tools/call read")
	RecordDecision(span, authz.Decision{Effect: authz.ApprovalRequired, Reason: authz.ReasonApprovalRequired, Chain: threeHopDecision().Chain})
	RecordDecision(span, threeHopDecision())
	span.End()

	s := sr.Ended()[0]
	got := attrMap(s.Attributes())
	checks := map[attribute.Key]string{
		AttrDecision: "deny", AttrReason: "condition_false", AttrGrantID: "fs-read", AttrApprovalID: "ap-1",
		AttrSponsorIssuer: "https://idp.example.com", AttrSponsorSubject: "alice",
		AttrRunID: "C1", AttrRunSPIFFEID: "spiffe://td/agents/summarizer/runs/C1", AttrAgent: "summarizer",
	}
	for k, v := range checks {
		if got[k].AsString() != v {
			t.Errorf("%s = %q, want %q", k, got[k].AsString(), v)
		}
	}
	if !got[AttrBreakGlass].AsBool() {
		t.Error("break-glass attribute missing")
	}
	chain := got[AttrChain].AsStringSlice()
	if len(chain) != 3 || chain[0] != "spiffe://td/agents/researcher/runs/R1" || chain[2] != "spiffe://td/tools/fs" {
		t.Errorf("chain = %v", chain)
	}
	if got[AttrChainDepth].AsInt64() != 3 {
		t.Errorf("chain depth = %v", got[AttrChainDepth])
	}
	if _, ok := got["message"]; ok {
		t.Error("the decision message is a span attribute; it belongs in the event only")
	}

	events := s.Events()
	if len(events) != 2 {
		t.Fatalf("got %d events, want one per decision", len(events))
	}
	first, second := attrMap(events[0].Attributes), attrMap(events[1].Attributes)
	if events[0].Name != EventDecision || first[AttrDecision].AsString() != "approval_required" {
		t.Errorf("first event = %s %v", events[0].Name, first)
	}
	if second[AttrDecision].AsString() != "deny" || second["message"].AsString() != "path is outside /data" {
		t.Errorf("second event = %v", second)
	}
}

func TestRecordDecisionOnNonRecordingSpan(t *testing.T) {
	_, span := tracenoop.NewTracerProvider().Tracer("x").Start(context.Background(), "x")
	RecordDecision(span, threeHopDecision()) // must not panic
}

func TestRecordError(t *testing.T) {
	sr, tr := recorder()
	_, span := tr.Start(context.Background(), "tools/call echo")
	RecordError(span, ErrorTypeToolError, "tool failed")
	span.End()
	s := sr.Ended()[0]
	if s.Status().Code != codes.Error || s.Status().Description != "tool failed" {
		t.Errorf("status = %+v", s.Status())
	}
	if attrMap(s.Attributes())[AttrErrorType].AsString() != "tool_error" {
		t.Error("error.type missing")
	}
}
