package gateway

import (
	"context"
	"errors"
	"sync"

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

// inflight tracks forwarded calls by upstream server, so that a
// notification a server sends without naming a call can reach the one
// client it can belong to.
type inflight struct {
	mu    sync.Mutex
	calls map[string]map[*admitted]context.Context
}

// begin records a forwarded call until the returned func runs.
func (f *inflight) begin(ctx context.Context, a *admitted) func() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string]map[*admitted]context.Context{}
	}
	if f.calls[a.target.Server] == nil {
		f.calls[a.target.Server] = map[*admitted]context.Context{}
	}
	f.calls[a.target.Server][a] = ctx
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.calls[a.target.Server], a)
	}
}

// only returns the context of the single call in flight to server.
func (f *inflight) only(server string) (context.Context, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls[server]) != 1 {
		return nil, false
	}
	for _, ctx := range f.calls[server] {
		return ctx, true
	}
	return nil, false
}

// Notify relays a notification that a tool server sent outside any
// progress token (notifications/message, for one) to the client of the
// call in flight to that server. With several calls in flight, or none,
// it cannot tell whose it is and drops it rather than show one run's
// messages to another. Wire it to upstream.Options.OnNotification.
func (g *Gateway) Notify(server string, n mcp.JSONRPCNotification) {
	if n.Method != string(mcp.MethodNotificationMessage) {
		return
	}
	ctx, ok := g.inflight.only(server)
	if !ok {
		g.opts.Logger.Debug("dropped a log notification not tied to one call", "server", server)
		return
	}
	if out, ok := ctx.Value(directReplyKey{}).(*directReply); ok {
		// A call served directly carries the notification in its own
		// response, as mcp-go's server would.
		if !out.notify(n.Method, n.Params.AdditionalFields) {
			g.opts.Logger.Debug("dropped a log notification the client cannot take", "server", server)
		}
		return
	}
	_ = g.mcp.SendNotificationToClient(ctx, n.Method, n.Params.AdditionalFields)
}
