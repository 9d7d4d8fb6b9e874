// Package txntoken issues and verifies transaction tokens: short-lived
// JWTs the gateway signs for one authorized tool call and hands to the tool
// server that serves it.
//
// A token names the sponsor (sub) and the delegation chain as nested
// `act` claims in the style of RFC 8693, the outermost act being the
// latest actor. It carries the narrowed scope (server, tool, grant), a
// transaction id (txn) and the run the call acts for. It is bound to the
// call: its audience is the SPIFFE ID of the tool server that receives it,
// it holds a digest of the exact argument bytes, and it expires within
// seconds.
//
// When that tool server calls another tool through the gateway, it
// presents its own SVID together with the token. The gateway checks that
// the token's audience is the presenter and authorizes the chained call
// against the whole chain.
//
// Tokens are secrets: never log them or put them in span attributes.
package txntoken
