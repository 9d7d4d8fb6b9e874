package upstream

import (
	"context"
	"fmt"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
)

// inflight is one call in progress on a server.
type inflight struct {
	id uint64
	// ctx is the caller's context, kept so that a request the server sends
	// back during the call is handled in the caller's name.
	ctx         context.Context
	token       mcp.ProgressToken // unique token sent upstream
	callerToken mcp.ProgressToken // the caller's token, restored on relay
	progress    func(mcp.ProgressNotificationParams)
}

type callKey struct{}

// inflightCalls tracks the calls in progress on one server.
type inflightCalls struct {
	mu sync.Mutex
	m  map[uint64]*inflight
}

func (ic *inflightCalls) begin(ctx context.Context, id uint64, progress func(mcp.ProgressNotificationParams)) *inflight {
	call := &inflight{id: id, token: fmt.Sprintf("agentauth-%d", id), progress: progress}
	call.ctx = context.WithValue(ctx, callKey{}, call)
	ic.mu.Lock()
	ic.m[id] = call
	ic.mu.Unlock()
	return call
}

func (ic *inflightCalls) end(call *inflight) {
	ic.mu.Lock()
	delete(ic.m, call.id)
	ic.mu.Unlock()
}

func (ic *inflightCalls) byToken(token string) *inflight {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	for _, call := range ic.m {
		if call.token == token {
			return call
		}
	}
	return nil
}

// attribute returns the call a server request belongs to: the call carried
// by ctx (a multi round-trip request is handled on the call's context), or
// the only call in flight. With none or several it returns nil, since
// handling it in the wrong caller's name would leak across runs.
func (ic *inflightCalls) attribute(ctx context.Context) *inflight {
	if call, ok := ctx.Value(callKey{}).(*inflight); ok {
		return call
	}
	ic.mu.Lock()
	defer ic.mu.Unlock()
	if len(ic.m) != 1 {
		return nil
	}
	for _, call := range ic.m {
		return call
	}
	return nil
}

// onNotification consumes progress and list_changed notifications and
// relays the rest.
func (c *conn) onNotification(s *session, n mcp.JSONRPCNotification) {
	switch n.Method {
	case string(mcp.MethodNotificationProgress):
		c.relayProgress(n)
	case mcp.MethodNotificationToolsListChanged:
		go c.refresh(s, "tools")
	case mcp.MethodNotificationPromptsListChanged:
		go c.refresh(s, "prompts")
	case mcp.MethodNotificationResourcesListChanged:
		go c.refresh(s, "resources")
	default:
		c.relayOther(n)
	}
}

func (c *conn) relayProgress(n mcp.JSONRPCNotification) {
	token, _ := n.Params.AdditionalFields["progressToken"].(string)
	call := c.calls.byToken(token)
	if call == nil || call.progress == nil {
		return
	}
	p := mcp.ProgressNotificationParams{ProgressToken: call.callerToken}
	p.Progress, _ = n.Params.AdditionalFields["progress"].(float64)
	p.Total, _ = n.Params.AdditionalFields["total"].(float64)
	p.Message, _ = n.Params.AdditionalFields["message"].(string)
	call.progress(p)
}

func (c *conn) relayOther(n mcp.JSONRPCNotification) {
	if c.set.opts.OnNotification == nil {
		return
	}
	if n.Method == mcp.MethodNotificationResourceUpdated {
		if uri, ok := n.Params.AdditionalFields["uri"].(string); ok {
			fields := map[string]any{}
			for k, v := range n.Params.AdditionalFields {
				fields[k] = v
			}
			fields["uri"] = JoinURI(c.cfg.Name, uri)
			n.Params.AdditionalFields = fields
		}
	}
	c.set.opts.OnNotification(c.cfg.Name, n)
}

type samplingRelay struct{ c *conn }

func (r samplingRelay) CreateMessage(ctx context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	call := r.c.calls.attribute(ctx)
	if call == nil {
		return nil, r.c.unattributed("sampling/createMessage")
	}
	return r.c.set.opts.Sampling(call.ctx, r.c.cfg.Name, req)
}

type elicitationRelay struct{ c *conn }

func (r elicitationRelay) Elicit(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	call := r.c.calls.attribute(ctx)
	if call == nil {
		return nil, r.c.unattributed("elicitation/create")
	}
	return r.c.set.opts.Elicitation(call.ctx, r.c.cfg.Name, req)
}

type rootsRelay struct{ c *conn }

func (r rootsRelay) ListRoots(ctx context.Context, _ mcp.ListRootsRequest) (*mcp.ListRootsResult, error) {
	return r.c.set.opts.Roots(ctx, r.c.cfg.Name)
}

func (c *conn) unattributed(method string) error {
	c.log.Warn("upstream request rejected: not tied to exactly one call in flight", "method", method)
	return fmt.Errorf("%s from server %q rejected: it cannot be tied to exactly one call in flight", method, c.cfg.Name)
}
