package agentauth

import (
	"context"
	"errors"
	"fmt"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// MCPClient returns an mcp-go client connected to the gateway's MCP
// endpoint with the run's mTLS, started and initialized. Calls made with a
// context from WithTxnToken carry that transaction token.
func (r *Run) MCPClient(ctx context.Context, name string) (*client.Client, error) {
	if r.enroll.Gateway == "" {
		return nil, errors.New("agentauth: no gateway URL; set " + EnvGateway)
	}
	c, err := client.NewStreamableHttpClient(r.enroll.Gateway,
		transport.WithHTTPBasicClient(r.HTTPClient()),
		transport.WithHTTPHeaderFunc(txnTokenHeader))
	if err != nil {
		return nil, fmt.Errorf("agentauth: MCP client for %s: %w", r.enroll.Gateway, err)
	}
	if err := c.Start(ctx); err != nil {
		return nil, fmt.Errorf("agentauth: start MCP client: %w", err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: name, Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		c.Close()
		return nil, fmt.Errorf("agentauth: initialize MCP session with %s: %w", r.enroll.Gateway, err)
	}
	return c, nil
}
