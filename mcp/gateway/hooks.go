package gateway

import (
	"context"
	"net/http"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// hooks remember which sessions' clients support URL-mode elicitation.
func (g *Gateway) hooks() *server.Hooks {
	h := &server.Hooks{}
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
