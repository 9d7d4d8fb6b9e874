package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentauth/agentauth/mcp/envelope"
	"github.com/agentauth/agentauth/mcp/upstream"
)

// rawUpstream is implemented by an upstream set that can forward a
// tools/call as one encoded request, without mcp-go's client.
type rawUpstream interface {
	RawCapable(server string) bool
	CallToolRaw(ctx context.Context, r upstream.Request) (upstream.RawResult, error)
}

// reservedMeta is the prefix of the _meta keys that MCP itself defines.
const reservedMeta = "io.modelcontextprotocol/"

// direct returns the upstream set when the gateway serves an admitted
// tools/call itself instead of handing it to mcp-go's server and client.
// That is the plain case: no progress token, no task, and a client that
// takes no sampling, elicitation or roots requests. Anything else takes
// the general path, which serves every feature.
func (g *Gateway) direct(r *http.Request, msg *envelope.Message, a *admitted) (rawUpstream, bool) {
	ru, ok := g.opts.Upstream.(rawUpstream)
	if !ok || a.method != "tools/call" || msg.OtherParams() || a.tool.ParamHeaders() {
		return nil, false
	}
	h := r.Header
	if h.Get(mcp.HeaderLastEventID) != "" || !jsonContent(h.Get("Content-Type")) {
		return nil, false
	}
	version := h.Get(mcp.HeaderProtocolVersion)
	if sid := h.Get(headerSession); sid != "" {
		if !g.plainSession(sid, version) || !plainLegacyMeta(msg.Meta, a.meta) {
			return nil, false
		}
	} else if version != mcp.ProtocolVersion20260728 || !plainMeta(msg.Meta, a.meta, version) {
		return nil, false
	}
	return ru, ru.RawCapable(a.target.Server)
}

// plainSession reports whether a call of session sid, sent with protocol
// version header version, may be served directly. The revision must be
// one with sessions that mcp-go serves, and the client must take no server
// requests and have set no logging level. mcp-go must also have served a
// request of the session recently, so that its idle timer cannot end the
// session in between.
func (g *Gateway) plainSession(sid, version string) bool {
	switch version {
	case mcp.ProtocolVersion20251125, mcp.ProtocolVersion20250618, mcp.ProtocolVersion20250326:
	default:
		return false
	}
	c, ok := g.client(sid)
	return ok && !c.serverRequests && !c.logLevel &&
		g.sessions.servedWithin(sid, time.Now(), g.opts.SessionIdleTTL/4)
}

// plainLegacyMeta reports whether the _meta of a call on a revision with
// sessions carries no progress token and no key that MCP reserves.
// fields holds the members of m, as admit decoded them.
func plainLegacyMeta(m *envelope.Meta, fields map[string]json.RawMessage) bool {
	if m == nil {
		return true
	}
	if m.ProgressToken != nil || fields == nil {
		return false
	}
	for k := range fields {
		if strings.HasPrefix(k, reservedMeta) {
			return false
		}
	}
	return true
}

func jsonContent(v string) bool {
	mt, _, err := mime.ParseMediaType(v)
	return err == nil && mt == "application/json"
}

// plainMeta reports whether _meta declares version and capabilities
// without sampling, elicitation or roots, carries no progress token, and
// uses no other key that MCP reserves.
// fields holds the members of m, as admit decoded them.
func plainMeta(m *envelope.Meta, fields map[string]json.RawMessage, version string) bool {
	if m == nil || m.ProgressToken != nil || fields == nil {
		return false
	}
	var v string
	if json.Unmarshal(fields[mcp.MetaKeyProtocolVersion], &v) != nil || v != version {
		return false
	}
	raw := fields[mcp.MetaKeyClientCapabilities]
	var caps mcp.ClientCapabilities
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &caps) != nil ||
		caps.Sampling != nil || caps.Elicitation != nil || caps.Roots != nil {
		return false
	}
	for k, v := range fields {
		switch k {
		case mcp.MetaKeyProtocolVersion, mcp.MetaKeyClientCapabilities:
		case mcp.MetaKeyClientInfo:
			var info mcp.Implementation
			if len(v) == 0 || v[0] != '{' || json.Unmarshal(v, &info) != nil {
				return false
			}
		default:
			if strings.HasPrefix(k, reservedMeta) {
				return false
			}
		}
	}
	return true
}

// serveDirect forwards an admitted tools/call with one encoded request and
// writes the tool server's result back as it came. A log message the tool
// server sends during the call turns the response into an event stream, as
// mcp-go's server does, so the client sees it before the result.
func (g *Gateway) serveDirect(ctx context.Context, w http.ResponseWriter, r *http.Request, msg *envelope.Message, a *admitted, ru rawUpstream) {
	// Under protocol version 2026-07-28 a request names the log level it
	// wants in its _meta, and a direct call names none. With sessions, log
	// messages are sent unrequested, as on the general path.
	out := &directReply{w: w, id: msg.ID,
		events: r.Header.Get(headerSession) != "" && acceptsEvents(r.Header.Get("Accept"))}
	if !a.forwarded.CompareAndSwap(false, true) {
		out.fail(mcp.INTERNAL_ERROR, errNotAdmitted.Error())
		return
	}
	ctx = context.WithValue(ctx, directReplyKey{}, out)
	req, err := g.request(ctx, a)
	if err != nil {
		out.fail(mcp.INTERNAL_ERROR, err.Error())
		return
	}
	start := time.Now()
	res, err := ru.CallToolRaw(ctx, req)
	a.end()
	g.recordOutcome(ctx, a, err == nil && res.IsError, err, time.Since(start))
	if err != nil {
		g.opts.Logger.Warn("tool call failed at the tool server", "run_id", a.runID, "txn", a.txn,
			"server", a.target.Server, "tool", a.target.Name, "error", err)
		out.fail(mcp.INTERNAL_ERROR, fmt.Sprintf("tool server %q failed: %v", a.target.Server, err))
		return
	}
	out.result(res.Result)
}

// directReplyKey carries the reply of a call served directly, so that a
// notification the tool server sends during the call can join it.
type directReplyKey struct{}

// directReply is the HTTP response of a call served directly: one JSON
// body, or an event stream once a notification has to go out first.
type directReply struct {
	w      http.ResponseWriter
	id     json.RawMessage
	events bool // notifications may go out: a session whose client accepts text/event-stream

	mu     sync.Mutex
	stream bool // the response is an event stream
	done   bool // the response has been written
}

// notify sends a notification ahead of the result. It reports false when
// it may not: no session, a client that takes no event stream, or a call
// that is over.
func (d *directReply) notify(method string, params any) bool {
	body, err := json.Marshal(struct {
		JSONRPC string `json:"jsonrpc"`
		Method  string `json:"method"`
		Params  any    `json:"params,omitempty"`
	}{"2.0", method, params})
	if err != nil {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done || !d.events {
		return false
	}
	d.event(body)
	return true
}

// event writes one server-sent event. The caller holds d.mu.
func (d *directReply) event(body []byte) {
	if !d.stream {
		h := d.w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		d.w.WriteHeader(http.StatusOK)
		d.stream = true
	}
	// One data line per event: a result may hold line breaks between its
	// JSON tokens, which would end the data line early.
	var line bytes.Buffer
	if json.Compact(&line, body) != nil {
		line.Reset()
		line.Write(bytes.ReplaceAll(body, []byte("\n"), []byte("\ndata: ")))
	}
	_, _ = fmt.Fprintf(d.w, "event: message\ndata: %s\n\n", line.Bytes())
	if f, ok := d.w.(http.Flusher); ok {
		f.Flush()
	}
}

// result writes the JSON-RPC response carrying result.
func (d *directReply) result(result json.RawMessage) {
	b := make([]byte, 0, len(d.id)+len(result)+36)
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = append(b, d.id...)
	b = append(b, `,"result":`...)
	b = append(b, result...)
	b = append(b, '}')
	d.finish(b)
}

// fail writes a JSON-RPC error response without data.
func (d *directReply) fail(code int, msg string) {
	body, _ := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   rpcErrorNoData  `json:"error"`
	}{"2.0", d.id, rpcErrorNoData{code, msg}})
	d.finish(body)
}

type rpcErrorNoData struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (d *directReply) finish(body []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.done = true
	if d.stream {
		d.event(body)
		return
	}
	d.w.Header().Set("Content-Type", "application/json")
	d.w.WriteHeader(http.StatusOK)
	_, _ = d.w.Write(append(body, '\n'))
}

// acceptsEvents reports whether an Accept header takes text/event-stream.
func acceptsEvents(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err == nil && (mt == "text/event-stream" || mt == "*/*" || mt == "text/*") {
			return true
		}
	}
	return false
}
