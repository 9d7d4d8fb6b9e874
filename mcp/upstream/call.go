package upstream

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/mark3labs/mcp-go/mcp"
)

// Request is one call to forward to a server.
type Request struct {
	Server string
	// Name is the upstream (not namespaced) tool or prompt name, or the
	// upstream resource URI.
	Name string
	// Arguments is the exact raw arguments object; for a prompt, its
	// values are strings.
	Arguments json.RawMessage
	// Meta is the raw _meta object to forward, nil for none.
	Meta json.RawMessage
	// Header is added to the HTTP request of an HTTP server (such as
	// Txn-Token); stdio servers have no headers, so it is dropped there.
	Header http.Header
	// Run is the run the call acts for. A message that the server sends
	// outside any call's own stream reaches a call only while no other
	// run's call could have caused it.
	Run string
	// Progress receives the server's progress notifications for this call,
	// with the caller's progressToken restored. It runs on the server's
	// read loop, so it must not block. Without it, a progressToken in Meta
	// is still replaced, and progress is dropped.
	Progress func(mcp.ProgressNotificationParams)
}

// CallTool forwards a tools/call with the exact raw arguments. The tool must
// be listed and accepted.
func (s *Set) CallTool(ctx context.Context, r Request) (*mcp.CallToolResult, error) {
	c, err := s.conn(r.Server)
	if err != nil {
		return nil, err
	}
	if err := c.callable(ctx, r.Name); err != nil {
		return nil, err
	}
	sess, call, meta, err := s.begin(ctx, c, r)
	if err != nil {
		return nil, err
	}
	defer c.calls.end(call)

	req := mcp.CallToolRequest{Header: r.Header}
	req.Params.Name = r.Name
	if len(r.Arguments) > 0 {
		req.Params.Arguments = r.Arguments
		req.Params.RawArguments = r.Arguments
	}
	req.Params.Meta = meta
	res, err := sess.client.CallTool(call.ctx, req)
	call.failed = err != nil || (res != nil && res.IsError)
	return res, c.checkTransport(ctx, sess, err)
}

// GetPrompt forwards a prompts/get.
func (s *Set) GetPrompt(ctx context.Context, r Request) (*mcp.GetPromptResult, error) {
	c, err := s.conn(r.Server)
	if err != nil {
		return nil, err
	}
	req := mcp.GetPromptRequest{Header: r.Header}
	req.Params.Name = r.Name
	if len(r.Arguments) > 0 {
		if err := json.Unmarshal(r.Arguments, &req.Params.Arguments); err != nil {
			return nil, fmt.Errorf("upstream: prompt arguments must be an object of strings: %w", err)
		}
	}
	sess, call, meta, err := s.begin(ctx, c, r)
	if err != nil {
		return nil, err
	}
	defer c.calls.end(call)
	req.Params.Meta = meta
	res, err := sess.client.GetPrompt(call.ctx, req)
	call.failed = err != nil
	return res, c.checkTransport(ctx, sess, err)
}

// ReadResource forwards a resources/read of the upstream URI in r.Name.
func (s *Set) ReadResource(ctx context.Context, r Request) (*mcp.ReadResourceResult, error) {
	c, err := s.conn(r.Server)
	if err != nil {
		return nil, err
	}
	sess, call, meta, err := s.begin(ctx, c, r)
	if err != nil {
		return nil, err
	}
	defer c.calls.end(call)
	req := mcp.ReadResourceRequest{Header: r.Header}
	req.Params.URI = r.Name
	req.Params.Meta = meta
	res, err := sess.client.ReadResource(call.ctx, req)
	call.failed = err != nil
	return res, c.checkTransport(ctx, sess, err)
}

// Complete forwards a completion/complete. params.Ref names the prompt or
// resource template in upstream form; r.Name is unused.
func (s *Set) Complete(ctx context.Context, r Request, params mcp.CompleteParams) (*mcp.CompleteResult, error) {
	c, err := s.conn(r.Server)
	if err != nil {
		return nil, err
	}
	sess, call, _, err := s.begin(ctx, c, r)
	if err != nil {
		return nil, err
	}
	defer c.calls.end(call)
	req := mcp.CompleteRequest{Header: r.Header, Params: params}
	res, err := sess.client.Complete(call.ctx, req)
	call.failed = err != nil
	return res, c.checkTransport(ctx, sess, err)
}

// begin takes the session of the call's run, registers the call and
// builds its _meta.
func (s *Set) begin(ctx context.Context, c *conn, r Request) (*session, *inflight, *mcp.Meta, error) {
	meta, err := parseMeta(r.Meta)
	if err != nil {
		return nil, nil, nil, err
	}
	sess, release, err := c.sessionFor(ctx, r.Run)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: server %q is down or restarting", err, c.cfg.Name)
	}
	call := c.calls.begin(ctx, s.tokens.Add(1), r.Run, r.Progress)
	call.release = release
	if meta != nil && meta.ProgressToken != nil {
		call.callerToken = meta.ProgressToken
		meta.ProgressToken = call.token
	}
	return sess, call, meta, nil
}

// callable checks that a tool is listed, and accepted. A tool marked
// changed is checked again against the pin table, since an operator may
// have accepted it from another process.
func (c *conn) callable(ctx context.Context, name string) error {
	t, ok := c.tool(name)
	switch {
	case !ok:
		if _, err := c.session(); err != nil {
			return fmt.Errorf("%w: server %q is down or restarting", err, c.cfg.Name)
		}
		return fmt.Errorf("%w: server %q lists no tool %q", ErrUnknown, c.cfg.Name, name)
	case t.Status == StatusQuarantined:
		return fmt.Errorf("%w: tool %q of server %q: %s", ErrQuarantined, name, c.cfg.Name, t.Reason)
	case t.Status == StatusAccepted:
		return nil
	}

	pin, err := c.set.pins.Status(ctx, c.cfg.Name, name)
	if err != nil {
		return err
	}
	if pin.Status == StatusAccepted && pin.Digest == t.Digest {
		c.setStatus(name, StatusAccepted)
		return nil
	}
	return fmt.Errorf("%w: tool %q of server %q; review it, then run `agentauth tools accept %s %s`",
		ErrDefinitionChanged, name, c.cfg.Name, c.cfg.Name, name)
}

// parseMeta turns a raw _meta object into mcp-go's Meta, keeping every
// value raw.
func parseMeta(raw json.RawMessage) (*mcp.Meta, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, fmt.Errorf("upstream: _meta must be a JSON object: %w", err)
	}
	meta := &mcp.Meta{AdditionalFields: map[string]any{}}
	for k, v := range fields {
		if k == "progressToken" {
			meta.ProgressToken = rawToken(v)
			continue
		}
		meta.AdditionalFields[k] = v
	}
	return meta, nil
}

// rawToken returns a progress token as a string, or as a json.Number that
// encodes back to the exact integer.
func rawToken(v json.RawMessage) mcp.ProgressToken {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	return json.Number(v)
}
