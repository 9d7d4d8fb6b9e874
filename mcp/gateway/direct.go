package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strings"
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

// direct returns the upstream set when the gateway answers an admitted
// tools/call itself instead of handing it to mcp-go's server and client.
// That is the plain case of protocol version 2026-07-28, in which every
// request stands alone: no session, no progress token, no task, and a
// client that takes no sampling, elicitation or roots requests. Anything
// else takes the general path, which serves every feature.
func (g *Gateway) direct(r *http.Request, msg *envelope.Message, a *admitted) (rawUpstream, bool) {
	ru, ok := g.opts.Upstream.(rawUpstream)
	if !ok || a.method != "tools/call" || msg.OtherParams() || a.tool.ParamHeaders() {
		return nil, false
	}
	h := r.Header
	version := h.Get(mcp.HeaderProtocolVersion)
	if version != mcp.ProtocolVersion20260728 || h.Get(headerSession) != "" ||
		h.Get(mcp.HeaderLastEventID) != "" || !jsonContent(h.Get("Content-Type")) ||
		!plainMeta(msg.Meta, version) {
		return nil, false
	}
	return ru, ru.RawCapable(a.target.Server)
}

func jsonContent(v string) bool {
	mt, _, err := mime.ParseMediaType(v)
	return err == nil && mt == "application/json"
}

// plainMeta reports whether _meta declares version and capabilities
// without sampling, elicitation or roots, carries no progress token, and
// uses no other key that MCP reserves.
func plainMeta(m *envelope.Meta, version string) bool {
	if m == nil || m.ProgressToken != nil {
		return false
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(m.Raw, &fields) != nil {
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

// answerTool forwards an admitted tools/call with one encoded request and
// writes the tool server's result back as it came.
func (g *Gateway) answerTool(ctx context.Context, w http.ResponseWriter, msg *envelope.Message, a *admitted, ru rawUpstream) {
	if !a.forwarded.CompareAndSwap(false, true) {
		writeRPCError(w, msg.ID, mcp.INTERNAL_ERROR, errNotAdmitted.Error())
		return
	}
	req, err := g.request(ctx, a)
	if err != nil {
		writeRPCError(w, msg.ID, mcp.INTERNAL_ERROR, err.Error())
		return
	}
	start := time.Now()
	res, err := ru.CallToolRaw(ctx, req)
	a.end()
	g.recordOutcome(ctx, a, err == nil && res.IsError, err, time.Since(start))
	if err != nil {
		writeRPCError(w, msg.ID, mcp.INTERNAL_ERROR, fmt.Sprintf("tool server %q failed: %v", a.target.Server, err))
		return
	}
	b := make([]byte, 0, len(msg.ID)+len(res.Result)+36)
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = append(b, msg.ID...)
	b = append(b, `,"result":`...)
	b = append(b, res.Result...)
	b = append(b, "}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// writeRPCError answers a request with a JSON-RPC error without data.
func writeRPCError(w http.ResponseWriter, id json.RawMessage, code int, msg string) {
	body, _ := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}{JSONRPC: "2.0", ID: id, Error: struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{code, msg}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(body, '\n'))
}
