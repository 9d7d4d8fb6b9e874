package gateway

import (
	"context"
	"errors"

	"github.com/mark3labs/mcp-go/mcp"
)

// errNoCall refuses a server-to-client request that no forwarded call of
// this gateway caused.
var errNoCall = errors.New("a tool server request reaches the client only during a call from that client")

// Sampling relays a tool server's sampling/createMessage to the client
// whose call caused it. Wire it to upstream.Options.Sampling.
func (g *Gateway) Sampling(ctx context.Context, server string, r mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	if err := callFrom(ctx, server); err != nil {
		return nil, err
	}
	// NOTE: in a test with an mcp-go client on 2025-11-25, the client's
	// answer arrived but mcp-go's server found no pending request for it,
	// so the call timed out. The TypeScript conformance client succeeds.
	return g.mcp.RequestSampling(ctx, r)
}

// Elicitation relays a tool server's elicitation/create to the client
// whose call caused it. Wire it to upstream.Options.Elicitation.
func (g *Gateway) Elicitation(ctx context.Context, server string, r mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	if err := callFrom(ctx, server); err != nil {
		return nil, err
	}
	return g.mcp.RequestElicitation(ctx, r)
}

// Roots relays a tool server's roots/list to the client whose call caused
// it. Wire it to upstream.Options.Roots.
func (g *Gateway) Roots(ctx context.Context, server string) (*mcp.ListRootsResult, error) {
	if err := callFrom(ctx, server); err != nil {
		return nil, err
	}
	return g.mcp.RequestRoots(ctx, mcp.ListRootsRequest{})
}

// callFrom checks that ctx is the context of an admitted call to server.
func callFrom(ctx context.Context, server string) error {
	a, ok := ctx.Value(admittedKey{}).(*admitted)
	if !ok || a.target.Server != server {
		return errNoCall
	}
	return nil
}

// Notify relays a log message (notifications/message) that a tool server
// sent to the client of the call it is tied to. ctx is that call's
// context, as upstream.Options.OnNotification passes it. The upstream set
// drops a log message that it cannot tie to one call without risk of
// reaching another run. Wire Notify to upstream.Options.OnNotification.
func (g *Gateway) Notify(ctx context.Context, server string, n mcp.JSONRPCNotification) {
	if n.Method != string(mcp.MethodNotificationMessage) {
		return
	}
	if err := callFrom(ctx, server); err != nil {
		g.opts.Logger.Debug("dropped a log message not tied to a call", "server", server)
		return
	}
	msg := logMessage(n)
	if out, ok := ctx.Value(directReplyKey{}).(*directReply); ok {
		// A call served directly carries the notification in its own
		// response, as mcp-go's server would. Only sessions that set no
		// level are served directly, and mcp-go's default level is error.
		if !msg.Params.Level.ShouldSendTo(mcp.LoggingLevelError) {
			return
		}
		if !out.notify(n.Method, msg.Params) {
			g.opts.Logger.Debug("dropped a log message the client cannot take", "server", server)
		}
		return
	}
	// mcp-go sends it only at or above the level the client chose: the
	// session's, or under protocol version 2026-07-28 the request's.
	if err := g.mcp.SendLogMessageToClient(ctx, msg); err != nil {
		g.opts.Logger.Debug("dropped a log message", "server", server, "error", err)
	}
}

// logMessage reads a notifications/message as a log message. An unknown
// level reads as error, so that the message is passed on rather than lost.
func logMessage(n mcp.JSONRPCNotification) mcp.LoggingMessageNotification {
	level, _ := n.Params.AdditionalFields["level"].(string)
	logger, _ := n.Params.AdditionalFields["logger"].(string)
	msg := mcp.NewLoggingMessageNotification(mcp.LoggingLevel(level), logger, n.Params.AdditionalFields["data"])
	if !msg.Params.Level.ShouldSendTo(mcp.LoggingLevelDebug) {
		msg.Params.Level = mcp.LoggingLevelError
	}
	return msg
}
