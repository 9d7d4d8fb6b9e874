package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// ErrNotRaw: the call needs progress relayed, which only [Set.CallTool]
// does.
var ErrNotRaw = errors.New("upstream: this call goes only through the MCP client")

// RawResult is a tools/call result as the server encoded it.
type RawResult struct {
	// Result is the JSON-RPC result object, exactly as received.
	Result json.RawMessage
	// IsError is the result's isError member.
	IsError bool
}

// rawIDPrefix is the prefix of the ids of raw calls. It keeps them apart
// from the numbers mcp-go's client uses on the same transport.
const rawIDPrefix = "agentauth-"

// RawCapable reports whether server takes calls from [Set.CallToolRaw]
// now: it is configured and has a live session.
func (s *Set) RawCapable(server string) bool {
	c, err := s.conn(server)
	if err != nil {
		return false
	}
	_, err = c.session()
	return err == nil
}

// CallToolRaw forwards a tools/call, writing the request once from the
// exact raw arguments and _meta, and hands back the server's result
// without decoding it into mcp-go's types. Requests and notifications that
// the server sends while it handles the call go to the same handlers as
// with [Set.CallTool], and a call whose ctx ends is cancelled the same way.
//
// r.Meta must not carry a progressToken, nor any key under the reserved
// "io.modelcontextprotocol/" prefix. r.Progress must be nil, or it returns
// [ErrNotRaw] before sending anything. A call that needs
// progress goes through [Set.CallTool].
func (s *Set) CallToolRaw(ctx context.Context, r Request) (RawResult, error) {
	c, err := s.conn(r.Server)
	if err != nil {
		return RawResult{}, err
	}
	if r.Progress != nil {
		return RawResult{}, ErrNotRaw
	}
	if err := c.callable(ctx, r.Name); err != nil {
		return RawResult{}, err
	}
	sess, release, err := c.sessionFor(ctx, r.Run)
	if err != nil {
		return RawResult{}, fmt.Errorf("%w: server %q is down or restarting", err, c.cfg.Name)
	}
	defer release()
	version := sess.client.ProtocolVersion()
	modern := mcp.IsModernProtocol(version)
	params, err := rawCallParams(r, c.protocolMeta(version, modern))
	if err != nil {
		return RawResult{}, err
	}
	header := r.Header.Clone()
	if header == nil {
		header = http.Header{}
	}
	if modern {
		c.standardHeaders(header, r.Name, params)
	}

	id := s.tokens.Add(1)
	call := c.calls.begin(ctx, id, r.Run, nil)
	defer c.calls.end(call)
	req := transport.JSONRPCRequest{
		JSONRPC: mcp.JSONRPC_VERSION,
		ID:      mcp.NewRequestId(rawIDPrefix + strconv.FormatUint(id, 10)),
		Method:  string(mcp.MethodToolsCall),
		Params:  params,
		Header:  header,
	}
	tr := sess.client.GetTransport()
	resp, err := tr.SendRequest(call.ctx, req)
	call.failed = true // until a result that is no error arrives
	if err != nil {
		if ctx.Err() != nil && sess.proc != nil {
			c.sendCancelled(tr, req.ID, ctx.Err())
		}
		return RawResult{}, c.checkTransport(ctx, sess, transport.NewError(err))
	}
	if resp.Error != nil {
		return RawResult{}, resp.Error.AsError()
	}
	res, err := rawResult(resp.Result)
	call.failed = err != nil || res.IsError
	return res, err
}

// sendCancelled sends notifications/cancelled to a stdio server for a
// request whose caller went away. Over HTTP, ending the request's stream does that. The
// notice is best effort and sent off the caller's path.
func (c *conn) sendCancelled(tr transport.Interface, id mcp.RequestId, reason error) {
	n := mcp.JSONRPCNotification{JSONRPC: mcp.JSONRPC_VERSION}
	n.Method = string(mcp.MethodNotificationCancelled)
	n.Params.AdditionalFields = map[string]any{"requestId": id, "reason": reason.Error()}
	go func() {
		ctx, cancel := context.WithTimeout(c.set.ctx, 5*time.Second)
		defer cancel()
		if err := tr.SendNotification(ctx, n); err != nil {
			c.log.Debug("cancellation notice not sent", "err", err)
		}
	}()
}

// rawCallParams encodes the params object of a tools/call: name, the exact
// argument bytes, and _meta with the connection's protocol members first.
func rawCallParams(r Request, protocol []byte) (json.RawMessage, error) {
	name, err := json.Marshal(r.Name)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Grow(len(name) + len(r.Arguments) + len(r.Meta) + len(protocol) + 48)
	b.WriteString(`{"name":`)
	b.Write(name)
	if len(r.Arguments) > 0 {
		if !json.Valid(r.Arguments) || r.Arguments[0] != '{' {
			return nil, errors.New("upstream: tool arguments must be a JSON object")
		}
		b.WriteString(`,"arguments":`)
		b.Write(r.Arguments)
	}
	meta, err := mergeMeta(protocol, r.Meta)
	if err != nil {
		return nil, err
	}
	if len(meta) > 0 {
		b.WriteString(`,"_meta":`)
		b.Write(meta)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// mergeMeta joins two encoded JSON objects whose member names are disjoint.
func mergeMeta(protocol, meta []byte) ([]byte, error) {
	meta = bytes.TrimSpace(meta)
	if len(meta) > 0 && (meta[0] != '{' || !json.Valid(meta)) {
		return nil, errors.New("upstream: _meta must be a JSON object")
	}
	if len(protocol) == 0 {
		return meta, nil
	}
	if len(meta) == 0 {
		return protocol, nil
	}
	members := bytes.TrimSpace(meta[1:])
	if members[0] == '}' {
		return protocol, nil
	}
	out := make([]byte, 0, len(protocol)+len(members)+1)
	out = append(out, protocol[:len(protocol)-1]...)
	out = append(out, ',')
	return append(out, members...), nil
}

// protocolMeta returns the _meta members that protocol version 2026-07-28
// requires on every request, as mcp-go's client would send them on this
// session: the version, the client's identity and its capabilities.
func (c *conn) protocolMeta(version string, modern bool) []byte {
	if !modern {
		return nil
	}
	caps := mcp.ClientCapabilities{}
	if c.set.opts.Sampling != nil {
		caps.Sampling = &mcp.SamplingCapability{}
	}
	if c.set.opts.Elicitation != nil {
		caps.Elicitation = &mcp.ElicitationCapability{}
	}
	if c.set.opts.Roots != nil {
		caps.Roots = &struct {
			ListChanged bool `json:"listChanged,omitempty"`
		}{ListChanged: true}
	}
	b, err := json.Marshal(map[string]any{
		mcp.MetaKeyProtocolVersion:    version,
		mcp.MetaKeyClientInfo:         clientInfo,
		mcp.MetaKeyClientCapabilities: caps,
	})
	if err != nil {
		return nil
	}
	return b
}

// clientInfo is the implementation name and version the gateway gives
// tool servers.
var clientInfo = mcp.Implementation{Name: "agentauth", Version: "1"}

// standardHeaders sets the Mcp-Method and Mcp-Name headers, and the
// Mcp-Param-* headers of a tool whose input schema declares them.
func (c *conn) standardHeaders(h http.Header, name string, params json.RawMessage) {
	h.Set(mcp.HeaderMethod, string(mcp.MethodToolsCall))
	if v, ok := mcp.EncodeHeaderValue(name); ok {
		h.Set(mcp.HeaderName, v)
	}
	t, ok := c.tool(name)
	if !ok || !t.paramHeaders {
		return
	}
	for k, v := range mcp.GenerateParamHeaders(&t.Definition, params) {
		h.Set(k, v)
	}
}

// rawResult checks that a result is a JSON object and reads its isError.
// A result that requests more input (a multi round-trip request) is
// rejected, because the raw path has no client to give it.
func rawResult(raw json.RawMessage) (RawResult, error) {
	var top struct {
		IsError    *bool  `json:"isError"`
		ResultType string `json:"resultType"`
	}
	if len(raw) == 0 || raw[0] != '{' {
		return RawResult{}, errors.New("upstream: tools/call result is not a JSON object")
	}
	if err := json.Unmarshal(raw, &top); err != nil {
		return RawResult{}, fmt.Errorf("upstream: tools/call result: %w", err)
	}
	if top.ResultType == string(mcp.ResultTypeInputRequired) {
		return RawResult{}, errors.New("upstream: the tool server asked for client input, which this call cannot give")
	}
	return RawResult{Result: raw, IsError: top.IsError != nil && *top.IsError}, nil
}
