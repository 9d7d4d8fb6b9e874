// Package bridge is the agent side of agentauth for MCP hosts that cannot
// present an SVID themselves: `agentauth connect`.
//
// A Bridge holds the run's credentials (a key generated in memory and the
// X.509-SVID obtained for it from a CSR, renewed before it expires), speaks
// mTLS to the gateway's /mcp endpoint and relays everything in both
// directions. It offers two faces to the host:
//
//   - stdio: newline-delimited JSON-RPC on standard input and output, for
//     hosts that launch MCP servers as processes;
//   - Streamable HTTP on 127.0.0.1, for hosts that connect to a URL. It
//     answers only requests whose Host names the loopback listener and
//     whose Origin, when present, is a loopback origin, so a web page cannot
//     reach it through DNS rebinding.
//
// The host never receives the run's key or SVID, and any Authorization header
// it sends is dropped: the gateway authenticates the run by its SVID only.
package bridge
