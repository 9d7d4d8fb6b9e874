// Package traces sets up OpenTelemetry for the gateway. It holds the
// tracer and meter providers, configured by the standard OTEL_*
// environment variables, and span and attribute names that follow the
// semantic conventions for MCP. It also propagates trace context through
// MCP params._meta and defines the gateway's metric instruments and
// their Prometheus exposition.
//
// Tracing is off unless an OTLP endpoint or OTEL_TRACES_EXPORTER=otlp is
// set. When it is on, spans go through a bounded queue that never blocks
// a call: a span that ends while the queue is full is dropped and
// counted in agentauth.spans.dropped, and so are the spans of a failed
// export. Shutdown flushes the queue.
//
// A tool call's server span is named "tools/call {tool}" and carries
// mcp.method.name, gen_ai.tool.name, gen_ai.operation.name=execute_tool,
// jsonrpc.request.id, mcp.session.id and mcp.protocol.version where
// known, and error.type (tool_error for a result with isError set, the
// JSON-RPC code for an error). RecordDecision adds agentauth's own
// attributes: sponsor, run id and SPIFFE ID, the ordered chain of SPIFFE
// IDs and its depth, effect, reason, grant, approval and break-glass, and
// one span event per decision. No attribute holds a token, key or
// argument value.
package traces
