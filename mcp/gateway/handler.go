package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/agentauth/agentauth/agentauth/authz"
	"github.com/agentauth/agentauth/mcp/txntoken"
)

const (
	headerSession = "Mcp-Session-Id"
	headerMethod  = "Mcp-Method"
	headerName    = "Mcp-Name"
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
		g.opts.Logger.Info("refused unauthenticated request", "remote", r.RemoteAddr, "error", err)
		w.Header().Set("WWW-Authenticate", `Bearer realm="agentauth"`)
		writeStatusDenial(w, http.StatusUnauthorized, err.Error(), DenialData{Reason: authz.ReasonUnauthenticated})
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
		g.http.ServeHTTP(w, r)
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
	if ce := r.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		writeStatusDenial(w, http.StatusUnsupportedMediaType,
			"compressed request bodies are not accepted; send identity encoding",
			DenialData{Reason: authz.ReasonMalformedRequest})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.opts.MaxBodyBytes))
	if err != nil {
		writeStatusDenial(w, http.StatusRequestEntityTooLarge,
			"request body is over the size limit or unreadable", DenialData{Reason: authz.ReasonMalformedRequest})
		return
	}
	msg, err := decodeMessage(body)
	if err == nil {
		err = checkHeaders(r.Header, msg)
	}
	if err != nil {
		writeStatusDenial(w, http.StatusBadRequest, "malformed request: "+err.Error(),
			DenialData{Reason: authz.ReasonMalformedRequest})
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	if !gated(msg.Method) {
		g.http.ServeHTTP(w, r)
		return
	}
	g.serveGated(w, r, msg, principalErr)
}

// checkHeaders refuses Mcp-Method and Mcp-Name headers that do not say
// what the body says.
func checkHeaders(h http.Header, m message) error {
	if v := h.Get(headerMethod); v != "" && !m.IsResponse && v != m.Method {
		return errors.New("Mcp-Method header does not match the body's method")
	}
	if v := h.Get(headerName); v != "" {
		name, ok := m.param("name")
		if !ok {
			name, ok = m.param("uri")
		}
		if !ok || v != name {
			return errors.New("Mcp-Name header does not match the body's name or uri")
		}
	}
	return nil
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
