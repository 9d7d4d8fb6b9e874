// Package gateway is the agents' MCP endpoint: Streamable HTTP at /mcp,
// over TLS, in front of the upstream tool servers.
//
// Every request takes the same path, and any error on it is a refusal:
//
//  1. Identity. The caller presents its X.509-SVID over mTLS, or a JWT-SVID
//     for the gateway's audience as a bearer token. A run is
//     spiffe://<td>/agents/<agent>/runs/<run-id>; a tool server calling
//     tools on a run's behalf is spiffe://<td>/tools/<server> and also
//     presents the transaction token of the call it is serving (header
//     Txn-Token). There is no anonymous access and no static key; a
//     person's OIDC token is refused with a pointer to the control API.
//  2. Sessions. Every MCP session id is bound to the SPIFFE ID that created
//     it. Another caller presenting it, on POST, GET (including a
//     Last-Event-ID resumption) or DELETE, receives the same response as
//     for an unknown session. The stateless 2026-07-28 revision has no sessions.
//  3. Strict decoding. The raw body is read under a size limit (gzip is
//     inflated under the same limit; other encodings are refused) and
//     checked by package envelope before mcp-go decodes it: no duplicate or
//     case-variant member names (inside the arguments too), no batches,
//     Mcp-Method and Mcp-Name must match the body. A malformed request
//     from an authenticated caller is recorded by the Auditor (the caller,
//     its chain, the method when known and the error, nothing of the
//     body) before it is answered.
//  4. Authorization. tools/call, resources/read, resources/subscribe,
//     prompts/get and completion/complete are decided by the Authorizer
//     before anything is forwarded; tools/list, prompts/list,
//     resources/list and resources/templates/list show only what a grant
//     covers (a template when a grant covers its text, such as a URI
//     prefix it starts with), so a run does not learn the names or URIs of
//     entries it may not use. A call that needs approval waits, bounded by
//     Options.ApprovalWait, and is then forwarded or refused naming the
//     pending approval.
//  5. Audit and trace. The decision record is committed by the Auditor
//     before forwarding (a failure refuses the call with
//     audit_unavailable); the outcome and latency follow. Each call gets a
//     span that continues the caller's trace from params._meta (or the
//     traceparent header), and the forwarded params._meta carries the
//     span's traceparent.
//  6. Forwarding. The exact argument bytes that were authorized go to the
//     tool server, with a transaction token (package txntoken) in
//     params._meta under io.agentauth/txn-token and in the Txn-Token
//     header. Progress notifications come back to the caller, and a tool
//     server's sampling, elicitation and roots requests reach the client
//     whose call caused them (Gateway.Sampling, Elicitation, Roots).
//
// # Refusals
//
// A refused request is a JSON-RPC error with code DenialCode (-32030)
// whose data holds reason (an authz.Reason such as tool_not_granted,
// condition_false, approval_required, tool_definition_changed,
// txn_token_invalid or audit_unavailable), run_id, trace_id and, for a
// pending approval, approval_id and approval_url. It never carries policy
// internals. The one exception: a call pending approval from a session
// whose client declared URL-mode elicitation is answered with MCP's
// URL-elicitation-required error (-32042), whose data lists one URL
// elicitation pointing at the approval page, next to the same fields. A
// body refused by the envelope decoder gets the JSON-RPC code for its
// fault (-32700 or -32600) with reason malformed_request, and HTTP 400,
// 413 or 415. An unauthenticated request gets HTTP 401; it is counted in
// the metric agentauth.gateway.unauthenticated and logged at most once a
// second, but not audited, so that a flood of them cannot fill the audit
// log.
//
// Tools of changed definition are refused with tool_definition_changed.
// A call to a tool the gateway does not expose, unknown or quarantined, is
// refused with tool_not_granted and a decision record, exactly as a call
// to a tool the run holds no grant for, so the answer does not tell
// whether the tool exists.
package gateway
