// Package conformance checks the gateway against the MCP conformance
// suite: mcp-go's conformance fixture server is tested once directly and
// once through the gateway and the connect bridge, and every scenario that
// passes directly must pass through the gateway. It holds only tests.
package conformance
