// Package txntoken issues and verifies transaction tokens: short-lived
// JWTs the gateway signs for one authorized tool call and hands to the tool
// server that serves it.
//
// A token names the sponsor (sub), the delegation chain as nested `act`
// claims in the style of RFC 8693 (the outermost act is the latest actor),
// the narrowed scope (server, tool, grant), a transaction id (txn), the run
// the call acts for, and binds itself to the call: its audience is the SPIFFE
// ID of the tool server that receives it, it carries a digest of the exact
// argument bytes, and it expires within seconds. When that tool server calls
// another tool through the gateway it presents its own SVID together with
// the token; the gateway verifies that the audience is the presenter and
// authorizes the chained call against the whole chain.
//
// Tokens are secrets: never log them or put them in span attributes.
package txntoken
