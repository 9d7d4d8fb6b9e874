// Package upstream connects the gateway to the MCP tool servers named in
// configuration and merges them into one catalog.
//
// A [Set] starts every configured server. A stdio server is a child process
// that the Set supervises and restarts with bounded exponential backoff. An
// HTTP server is reached over Streamable HTTP with the configured headers,
// presenting the gateway's own SVID when the server is configured with
// mtls. One failing server never takes the others down: while it is down,
// its tools, prompts and resources leave the catalog and calls to it fail
// with [ErrUnavailable].
//
// # Names
//
// Tools and prompts are exposed as "<server>__<name>" ([JoinName],
// [SplitName]). Server names match [A-Za-z0-9-]+ and contain no underscore,
// so the first "__" always ends the server name and the mapping is
// reversible. Resources and resource templates are exposed as
// "agentauth://<server>/<original-uri>" ([JoinURI], [SplitURI]); the
// original URI follows the first "/" after the server name unchanged.
// Two servers whose names differ only in case are a configuration error.
// A tool whose name is outside the MCP tool-name set ([A-Za-z0-9_.-], 1 to
// 128 characters, also after namespacing) or that a server lists twice is
// quarantined: it stays out of the callable catalog and is reported.
//
// # Pins
//
// Every tool definition (title, description, input and output schema,
// annotations) is pinned by a canonical SHA-256 digest in the SQLite table
// upstream_tool_pins. The first definition seen is accepted (trust on first
// use, logged). A later, different definition marks the tool "changed" and
// [Set.CallTool] fails with [ErrDefinitionChanged] until an operator runs
// [Pins.Accept] (the CLI `agentauth tools accept`, from another process on
// the same database file). The Set reads the pin table every
// Options.PinPoll (2s by default), so the catalog shows such a tool
// accepted again, and Options.OnChange runs, within that interval.
//
// # API used by the gateway
//
//	func New(ctx context.Context, servers []config.Server, opts Options) (*Set, error)
//	func (s *Set) Close() error
//	func (s *Set) Ready() error
//	func (s *Set) Catalog() Catalog           // Tools, Prompts, Resources, ResourceTemplates
//	func (s *Set) Tool(namespaced string) (Tool, bool)
//	func (s *Set) CallTool(ctx context.Context, r Request) (*mcp.CallToolResult, error)
//	func (s *Set) GetPrompt(ctx context.Context, r Request) (*mcp.GetPromptResult, error)
//	func (s *Set) ReadResource(ctx context.Context, r Request) (*mcp.ReadResourceResult, error)
//	func (s *Set) Complete(ctx context.Context, r Request, p mcp.CompleteParams) (*mcp.CompleteResult, error)
//	func (s *Set) Subscribe(ctx context.Context, r Request) error   // and Unsubscribe
//	func (s *Set) Pins() *Pins                // List, Accept, AcceptAll
//	func Reason(err error) authz.Reason       // upstream_unavailable, tool_definition_changed, ...
//
// A [Request] names the server and the upstream (not namespaced) tool,
// prompt or resource URI, and carries the exact raw arguments, which reach
// the server byte for byte in value (encoding/json may escape <, > and &).
// Request.Meta is forwarded as the request's _meta; its progressToken is
// replaced by one unique to the upstream call, and progress notifications
// come back through Request.Progress with the caller's token restored.
// Cancelling ctx cancels the upstream request (notifications/cancelled on
// stdio, a closed stream on HTTP). Request.Header (such as Txn-Token) is
// added to the HTTP request of an HTTP server and ignored for stdio.
//
// Options.OnChange runs after the catalog changed (a list_changed
// notification, a server going down or coming back). Requests a server sends
// to the client side (sampling, elicitation) reach Options.Sampling and
// Options.Elicitation with the context of the tool call that caused them;
// a request that cannot be tied to exactly one in-flight call is rejected.
// Roots are declared only when Options.Roots is set.
//
// # Protocol revision
//
// When Options.Sampling or Options.Elicitation is set, the Set speaks
// [SessionProtocol] (2025-11-25) to every server, keeping a Streamable HTTP
// server's standalone GET stream open; otherwise it speaks the newest
// revision mcp-go offers (2026-07-28). In 2026-07-28 a server can ask for
// input only by returning an input_required result, so a tool written
// against the session API (mcp-go's RequestSampling and RequestElicitation,
// as in its conformance fixture) could not ask at all. On the session
// revision such a request tied to a call arrives on that call's response
// stream and is handled in its name; one sent on the standalone stream
// (mcp-go sends sampling there) is relayed only while exactly one call is
// in flight on that server. An input_required result, from a server that
// speaks 2026-07-28 anyway, is answered through the same handlers and the
// call retried by mcp-go's client.
package upstream
