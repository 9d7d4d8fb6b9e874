package gateway

import (
	"context"
	"net/http"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// hooks remember which sessions' clients support URL-mode elicitation, and
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
		el := req.Params.Capabilities.Elicitation
		if sess != nil && sess.SessionID() != "" && el != nil && el.URL != nil {
			g.urlClients.Store(sess.SessionID(), true)
		}
	})
	h.AddOnUnregisterSession(func(_ context.Context, sess server.ClientSession) {
		g.urlClients.Delete(sess.SessionID())
	})
	return h
}

// supportsURLElicitation reports whether the request's session declared
// URL-mode elicitation.
func (g *Gateway) supportsURLElicitation(r *http.Request) bool {
	sid := r.Header.Get(headerSession)
	if sid == "" {
		return false
	}
	_, ok := g.urlClients.Load(sid)
	return ok
}
