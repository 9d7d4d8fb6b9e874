package traces

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentauth/agentauth/agentauth/authz"
)

// Attribute keys of the OpenTelemetry semantic conventions for MCP
// (semantic-conventions-genai, docs/gen-ai/mcp.md, status Development)
// and the general keys they reuse.
const (
	AttrMCPMethodName          = attribute.Key("mcp.method.name")
	AttrMCPSessionID           = attribute.Key("mcp.session.id")
	AttrMCPProtocolVersion     = attribute.Key("mcp.protocol.version")
	AttrMCPResourceURI         = attribute.Key("mcp.resource.uri")
	AttrJSONRPCRequestID       = attribute.Key("jsonrpc.request.id")
	AttrJSONRPCProtocolVersion = attribute.Key("jsonrpc.protocol.version")
	AttrRPCResponseStatusCode  = attribute.Key("rpc.response.status_code")
	AttrGenAIToolName          = attribute.Key("gen_ai.tool.name")
	AttrGenAIPromptName        = attribute.Key("gen_ai.prompt.name")
	AttrGenAIOperationName     = attribute.Key("gen_ai.operation.name")
	AttrErrorType              = attribute.Key("error.type")
	AttrServerAddress          = attribute.Key("server.address")
	AttrServerPort             = attribute.Key("server.port")
	AttrClientAddress          = attribute.Key("client.address")
	AttrClientPort             = attribute.Key("client.port")
	AttrNetworkTransport       = attribute.Key("network.transport")
	AttrNetworkProtocolName    = attribute.Key("network.protocol.name")
	AttrNetworkProtocolVersion = attribute.Key("network.protocol.version")
)

// Values the semantic conventions fix.
const (
	// OperationExecuteTool is gen_ai.operation.name for tools/call.
	OperationExecuteTool = "execute_tool"
	// ErrorTypeToolError is error.type for a tool result with isError set.
	ErrorTypeToolError = "tool_error"
	// TransportTCP and TransportPipe are network.transport for Streamable
	// HTTP and stdio.
	TransportTCP  = "tcp"
	TransportPipe = "pipe"
)

// MCP method names that get a target in their span name.
const (
	MethodToolsCall  = "tools/call"
	MethodPromptsGet = "prompts/get"
)

// Attribute keys of agentauth. None of them ever holds a token, key or
// argument value.
const (
	AttrSponsorIssuer  = attribute.Key("agentauth.sponsor.issuer")
	AttrSponsorSubject = attribute.Key("agentauth.sponsor.subject")
	AttrRunID          = attribute.Key("agentauth.run.id")
	AttrRunSPIFFEID    = attribute.Key("agentauth.run.spiffe_id")
	AttrAgent          = attribute.Key("agentauth.agent")
	// AttrChain holds the SPIFFE IDs of the delegation chain, from the
	// sponsor's first run down to the caller.
	AttrChain      = attribute.Key("agentauth.chain")
	AttrChainDepth = attribute.Key("agentauth.chain.depth")
	AttrDecision   = attribute.Key("agentauth.decision")
	AttrReason     = attribute.Key("agentauth.decision.reason")
	AttrGrantID    = attribute.Key("agentauth.grant.id")
	AttrApprovalID = attribute.Key("agentauth.approval.id")
	AttrBreakGlass = attribute.Key("agentauth.break_glass")
	// AttrServer is the upstream tool server's name from configuration.
	AttrServer = attribute.Key("agentauth.server")
	// AttrVia is the SPIFFE ID of a tool server calling on a run's behalf.
	AttrVia = attribute.Key("agentauth.via")
	// AttrForwarding is how the gateway forwarded a call: "direct" (one
	// request written from the authorized bytes) or "mcp" (through mcp-go's
	// server and client, for progress, sampling and the like).
	AttrForwarding = attribute.Key("agentauth.forwarding")
	// AttrAuditSeq is the sequence number of the call's audit record.
	AttrAuditSeq = attribute.Key("agentauth.audit.seq")
)

// EventDecision names the span event RecordDecision adds.
const EventDecision = "agentauth.decision"

// SpanName returns the span name the semantic conventions give an MCP
// request: "{mcp.method.name} {target}", where target is the tool or
// prompt name for tools/call and prompts/get, or the method alone.
func SpanName(method, target string) string {
	if target == "" || (method != MethodToolsCall && method != MethodPromptsGet) {
		return method
	}
	return method + " " + target
}

// Request describes an MCP request for its span attributes.
type Request struct {
	Method          string
	Target          string // tool or prompt name, or resource URI
	RequestID       string // the JSON-RPC id as text; empty for notifications and null ids
	SessionID       string
	ProtocolVersion string
	Transport       string // TransportTCP or TransportPipe
	// ServerAddress and ServerPort name the peer on a client span;
	// ClientAddress and ClientPort on a server span.
	ServerAddress string
	ServerPort    int
	ClientAddress string
	ClientPort    int
}

// Attributes returns the semantic-convention attributes of r.
func (r Request) Attributes() []attribute.KeyValue {
	kv := make([]attribute.KeyValue, 0, 10)
	kv = append(kv, AttrMCPMethodName.String(r.Method))
	switch r.Method {
	case MethodToolsCall:
		kv = append(kv, AttrGenAIToolName.String(r.Target), AttrGenAIOperationName.String(OperationExecuteTool))
	case MethodPromptsGet:
		kv = append(kv, AttrGenAIPromptName.String(r.Target))
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		kv = append(kv, AttrMCPResourceURI.String(r.Target))
	}
	kv = appendString(kv, AttrJSONRPCRequestID, r.RequestID)
	kv = appendString(kv, AttrMCPSessionID, r.SessionID)
	kv = appendString(kv, AttrMCPProtocolVersion, r.ProtocolVersion)
	kv = appendString(kv, AttrNetworkTransport, r.Transport)
	if r.ServerAddress != "" {
		kv = append(kv, AttrServerAddress.String(r.ServerAddress), AttrServerPort.Int(r.ServerPort))
	}
	if r.ClientAddress != "" {
		kv = append(kv, AttrClientAddress.String(r.ClientAddress), AttrClientPort.Int(r.ClientPort))
	}
	return kv
}

func appendString(kv []attribute.KeyValue, key attribute.Key, v string) []attribute.KeyValue {
	if v == "" {
		return kv
	}
	return append(kv, key.String(v))
}

// ChainAttributes returns the attributes of a delegation chain: the
// ordered SPIFFE IDs, the depth, and the calling run, which is the last
// hop that is a run.
func ChainAttributes(chain []authz.Hop) []attribute.KeyValue {
	return appendChain(make([]attribute.KeyValue, 0, 5), chain)
}

func appendChain(kv []attribute.KeyValue, chain []authz.Hop) []attribute.KeyValue {
	ids := make([]string, len(chain))
	for i, h := range chain {
		ids[i] = h.SPIFFEID
	}
	kv = append(kv, AttrChain.StringSlice(ids), AttrChainDepth.Int(len(chain)))
	for i := len(chain) - 1; i >= 0; i-- {
		if h := chain[i]; h.RunID != "" {
			kv = append(kv, AttrRunID.String(h.RunID), AttrRunSPIFFEID.String(h.SPIFFEID))
			if h.Agent != "" {
				kv = append(kv, AttrAgent.String(h.Agent))
			}
			break
		}
	}
	return kv
}

// RecordDecision sets the decision's attributes on span (effect, reason,
// grant, approval, break-glass, sponsor and chain) and adds an
// agentauth.decision event, so that a span that is authorized more than
// once (a call and its approval) shows each decision in order. The
// decision's message goes only into the event.
func RecordDecision(span trace.Span, d authz.Decision) {
	if !span.IsRecording() {
		return
	}
	kv := appendDecision(make([]attribute.KeyValue, 0, 16), d)
	n := len(kv)
	span.SetAttributes(appendChain(kv, d.Chain)...)
	event := kv[:n:n]
	if d.Message != "" {
		event = append(event, attribute.String("message", d.Message))
	}
	span.AddEvent(EventDecision, trace.WithAttributes(event...))
}

func appendDecision(kv []attribute.KeyValue, d authz.Decision) []attribute.KeyValue {
	kv = append(kv, AttrDecision.String(string(d.Effect)), AttrReason.String(string(d.Reason)))
	kv = appendString(kv, AttrGrantID, d.GrantID)
	kv = appendString(kv, AttrApprovalID, d.ApprovalID)
	if d.BreakGlass {
		kv = append(kv, AttrBreakGlass.Bool(true))
	}
	kv = appendString(kv, AttrSponsorIssuer, d.SponsorIssuer)
	return appendString(kv, AttrSponsorSubject, d.SponsorSubject)
}

// RecordError marks span as failed with error.type errorType, such as a
// JSON-RPC error code ("-32602") or ErrorTypeToolError, and the status
// description the semantic conventions ask for: the JSON-RPC error
// message, which must not hold secrets.
func RecordError(span trace.Span, errorType, description string) {
	span.SetAttributes(AttrErrorType.String(errorType))
	span.SetStatus(codes.Error, description)
}
