// Package envelope decodes the JSON-RPC envelope of an MCP message from
// untrusted bytes, strictly, before any lenient decoder reads them.
//
// encoding/json, which mcp-go v1.2.1 uses, matches object keys without
// regard to case and keeps the last of two duplicate keys, so a body such
// as {"params":{"name":"safe","Name":"danger"}} means one tool to a careful
// reader and another to mcp-go. [Decode] rejects every body on which two
// decoders could disagree:
//
//   - a body over the caller's size limit, or nested deeper than its depth limit
//   - invalid UTF-8, a JSON syntax error, or data after the top-level object
//   - a top-level array (JSON-RPC batches are not part of MCP since 2025-06-18)
//   - a duplicate object member name at any depth
//   - an unknown top-level member, or a member whose name equals a known
//     name under Unicode case folding without being equal to it ("Method",
//     "argumentſ"), at the top level, in params, in _meta and in the
//     completion ref and argument
//   - an object anywhere inside params.arguments of tools/call and
//     prompts/get holding two member names equal under Unicode simple case
//     folding ("path" and "PATH", "kind" and "\u212aind"): a Go tool
//     server decoding arguments with encoding/json would read whichever
//     comes last, while a grant condition on args.path checks the other
//   - a jsonrpc other than "2.0", an id that is not a string or integer, a
//     params that is not an object, and method-specific members of the
//     wrong type
//
// Every rejection is an [*Error] whose [Kind] maps to a JSON-RPC error code.
// The decoded [Message] keeps raw bytes for the id, params, arguments and
// _meta, so numbers such as 9007199254740993 stay exact, and
// [Message.Encode] writes the message back from those fields: what is
// forwarded is what was authorized.
package envelope
