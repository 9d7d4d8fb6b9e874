package agentauth

import (
	"context"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentauth/agentauth/mcp/txntoken"
)

// TxnTokenFromRequest returns the transaction token the gateway attached
// to an incoming tool call: from params._meta, or else from the Txn-Token
// HTTP header. A tool server passes it on (WithTxnToken) when it calls
// other tools through the gateway for this call, so the gateway checks the
// chained call against the same delegation chain. The token is a secret:
// never log it.
func TxnTokenFromRequest(req mcp.CallToolRequest) (string, bool) {
	if m := req.Params.Meta; m != nil {
		if tok, ok := m.AdditionalFields[txntoken.MetaKey].(string); ok && tok != "" {
			return tok, true
		}
	}
	if tok := req.Header.Get(txntoken.Header); tok != "" {
		return tok, true
	}
	return "", false
}

type txnTokenKey struct{}

// WithTxnToken returns a context whose MCP requests, made with a client
// from Run.MCPClient or ToolServer.MCPClient, carry tok in the Txn-Token header.
func WithTxnToken(ctx context.Context, tok string) context.Context {
	return context.WithValue(ctx, txnTokenKey{}, tok)
}

// SetTxnToken puts tok into a call's params._meta as well, for gateways
// that read it there.
func SetTxnToken(req *mcp.CallToolRequest, tok string) {
	if req.Params.Meta == nil {
		req.Params.Meta = &mcp.Meta{}
	}
	if req.Params.Meta.AdditionalFields == nil {
		req.Params.Meta.AdditionalFields = map[string]any{}
	}
	req.Params.Meta.AdditionalFields[txntoken.MetaKey] = tok
}

func txnTokenHeader(ctx context.Context) map[string]string {
	if tok, ok := ctx.Value(txnTokenKey{}).(string); ok && tok != "" {
		return map[string]string{txntoken.Header: tok}
	}
	return nil
}
