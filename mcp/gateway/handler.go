package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/agentauth/agentauth/mcp/envelope"
	"github.com/agentauth/agentauth/mcp/txntoken"
)

const (
	headerSession = "Mcp-Session-Id"
)

// principal is whom a request acts for: the caller's own run, or for a tool
// server the run named in its verified transaction token.
type principal struct {
	RunID string
	Via   string // SPIFFE ID of a tool server calling back
	Txn   *txntoken.Claims
}

type principalKey struct{}

func principalFrom(ctx context.Context) principal {
	p, _ := ctx.Value(principalKey{}).(principal)
	return p
}

// ServeHTTP authenticates the caller, binds sessions to it, validates the
// body strictly and authorizes it before mcp-go sees any of it.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	caller, err := g.authenticate(r)
	if err != nil {
		g.refuseUnauthenticated(w, r, err)
		return
	}
	p, perr := g.principalFor(caller, r.Header.Get(txntoken.Header))
	ctx := context.WithValue(r.Context(), callerKey{}, caller)
	ctx = context.WithValue(ctx, principalKey{}, p)
	r = r.WithContext(ctx)

	if sid := r.Header.Get(headerSession); sid != "" && !g.sessions.ownedBy(sid, caller.ID.String()) {
		// The same answer whether the session never existed or is another caller's.
		http.Error(w, "Invalid session ID", http.StatusNotFound)
		return
	}
	if r.Method == http.MethodGet && r.Header.Get("Last-Event-ID") != "" && r.Header.Get(headerSession) == "" {
		http.Error(w, "Last-Event-ID needs the Mcp-Session-Id of the stream", http.StatusBadRequest)
		return
	}
	if r.Method != http.MethodPost {
		g.serveMCP(w, r)
		return
	}
	g.servePost(w, r, perr)
}

// principalFor resolves whom the caller acts for. A tool server must
// present a transaction token whose audience is its own SPIFFE ID.
func (g *Gateway) principalFor(c Caller, token string) (principal, error) {
	if !c.IsToolServer() {
		return principal{RunID: c.RunID}, nil
	}
	if token == "" {
		return principal{}, errors.New("a tool server calls tools only with the " +
			txntoken.Header + " of the call it is serving")
	}
	claims, err := g.verifier.Verify(token, c.ID.String())
	if err != nil {
		return principal{}, err
	}
	return principal{RunID: claims.RunID, Via: c.ID.String(), Txn: &claims}, nil
}

func (g *Gateway) servePost(w http.ResponseWriter, r *http.Request, principalErr error) {
	body, err := envelope.ReadBody(r.Body, r.Header.Get("Content-Encoding"), g.opts.MaxBodyBytes)
	var msg *envelope.Message
	if err == nil {
		msg, err = envelope.Decode(body, envelope.Limits{MaxBytes: g.opts.MaxBodyBytes, MaxDepth: 64})
	}
	if err == nil {
		err = envelope.CheckHeaders(msg, r.Header)
	}
	if err != nil {
		g.refuseMalformed(w, r, msg, err)
		return
	}
	r.Header.Del("Content-Encoding")
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	if msg.Type != envelope.Request || !gated(msg.Method) {
		g.serveMCP(w, r)
		return
	}
	g.serveGated(w, r, msg, principalErr)
}

// serveMCP hands a request to mcp-go's server.
func (g *Gateway) serveMCP(w http.ResponseWriter, r *http.Request) {
	g.http.ServeHTTP(w, r)
}

// gated reports whether method needs a decision before it is served.
func gated(method string) bool {
	switch method {
	case "tools/call", "resources/read", "resources/subscribe", "prompts/get", "completion/complete":
		return true
	}
	return false
}

func writeStatusDenial(w http.ResponseWriter, status int, msg string, data DenialData) {
	w.Header().Set("Content-Type", "application/json")
	rw := &statusWriter{ResponseWriter: w, status: status}
	writeDenial(rw, nil, msg, data)
}

// statusWriter forces one status code on writeDenial.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(int) { s.ResponseWriter.WriteHeader(s.status) }
