package gateway

import (
	"context"
	"net/http"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// hooks remember what each session's client declared at initialize, and
// filter resources/list and resources/templates/list, for which mcp-go
// offers no filter option.
func (g *Gateway) hooks() *server.Hooks {
	h := &server.Hooks{}
	h.AddAfterListResources(func(ctx context.Context, _ any, _ *mcp.ListResourcesRequest, res *mcp.ListResourcesResult) {
		if res != nil {
			res.Resources = g.filterResources(ctx, res.Resources)
		}
	})
	h.AddAfterListResourceTemplates(func(ctx context.Context, _ any, _ *mcp.ListResourceTemplatesRequest, res *mcp.ListResourceTemplatesResult) {
		if res != nil {
			res.ResourceTemplates = g.filterTemplates(ctx, res.ResourceTemplates)
		}
	})
	h.AddAfterInitialize(func(ctx context.Context, _ any, req *mcp.InitializeRequest, _ *mcp.InitializeResult) {
		sess := server.ClientSessionFromContext(ctx)
		if sess == nil || sess.SessionID() == "" {
			return
		}
		caps := req.Params.Capabilities
		g.clients.Store(sess.SessionID(), clientSession{
			urlElicitation: caps.Elicitation != nil && caps.Elicitation.URL != nil,
			serverRequests: caps.Sampling != nil || caps.Elicitation != nil || caps.Roots != nil,
		})
	})
	// mcp-go restarts a session's idle timer when it serves a request of
	// the session. The hook notes the time, because plainSession relies on
	// it.
	h.AddBeforeAny(func(ctx context.Context, _ any, _ mcp.MCPMethod, _ any) {
		if sess := server.ClientSessionFromContext(ctx); sess != nil && sess.SessionID() != "" {
			g.sessions.touch(sess.SessionID(), time.Now())
		}
	})
	h.AddAfterSetLevel(func(ctx context.Context, _ any, _ *mcp.SetLevelRequest, _ *mcp.EmptyResult) {
		if sess := server.ClientSessionFromContext(ctx); sess != nil {
			if c, ok := g.client(sess.SessionID()); ok {
				c.logLevel = true
				g.clients.Store(sess.SessionID(), c)
			}
		}
	})
	h.AddOnUnregisterSession(func(_ context.Context, sess server.ClientSession) {
		g.clients.Delete(sess.SessionID())
		g.sessions.served.Delete(sess.SessionID())
	})
	return h
}

// clientSession holds the capabilities and settings the client of a
// session declared.
type clientSession struct {
	urlElicitation bool // URL-mode elicitation
	serverRequests bool // sampling, elicitation or roots
	logLevel       bool // it set a logging level
}

// client returns what the client of session sid declared at initialize.
func (g *Gateway) client(sid string) (clientSession, bool) {
	v, ok := g.clients.Load(sid)
	if !ok {
		return clientSession{}, false
	}
	return v.(clientSession), true
}

// supportsURLElicitation reports whether the request's session declared
// URL-mode elicitation.
func (g *Gateway) supportsURLElicitation(r *http.Request) bool {
	sid := r.Header.Get(headerSession)
	if sid == "" {
		return false
	}
	c, ok := g.client(sid)
	return ok && c.urlElicitation
}
