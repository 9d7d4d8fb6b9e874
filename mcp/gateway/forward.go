package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentauth/agentauth/mcp/txntoken"
	"github.com/agentauth/agentauth/mcp/upstream"
	"github.com/agentauth/agentauth/traces"
)

// errNotAdmitted guards the forwarding path: nothing reaches a tool server
// without a decision made for exactly this call.
var errNotAdmitted = errors.New("call rejected: it carries no authorization decision")

// claim returns the admitted request for method and exposed name, once.
func claim(ctx context.Context, method, exposed string) (*admitted, error) {
	a, ok := ctx.Value(admittedKey{}).(*admitted)
	if !ok || a.method != method || (exposed != "" && a.exposed != exposed) ||
		!a.decision.Allowed() || !a.forwarded.CompareAndSwap(false, true) {
		return nil, errNotAdmitted
	}
	return a, nil
}

// request builds the upstream request of an admitted call, with its
// transaction token in _meta and in the Txn-Token header.
func (g *Gateway) request(ctx context.Context, a *admitted) (upstream.Request, error) {
	token, err := g.issueToken(a)
	if err != nil {
		g.opts.Logger.Error("transaction token not issued; call stopped", "txn", a.txn, "error", err)
		return upstream.Request{}, errors.New("the gateway could not sign the call's transaction token")
	}
	// The client span of the forwarded call is the parent that the tool
	// server continues from _meta, so its own spans, and calls it makes in
	// turn, hang under this hop in the trace.
	clientCtx, client := g.opts.Tracer.Start(ctx, traces.SpanName(a.method, a.target.Name),
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(traces.Request{Method: a.method, Target: a.target.Name}.Attributes()...),
		trace.WithAttributes(traces.AttrServer.String(a.target.Server), traces.AttrRunID.String(a.runID)),
		trace.WithAttributes(traces.ChainAttributes(a.decision.Chain)...))
	meta, err := g.forwardMeta(clientCtx, a, token)
	if err != nil {
		client.End()
		return upstream.Request{}, fmt.Errorf("encode _meta: %w", err)
	}
	r := upstream.Request{
		Server: a.target.Server, Name: a.target.Name, Arguments: a.arguments, Meta: meta,
		Header: http.Header{txntoken.Header: []string{token}},
		Run:    a.runID,
	}
	if _, ok := a.meta["progressToken"]; ok {
		r.Progress = g.relayProgress(ctx)
	}
	a.client = client
	a.end = func() { client.End() }
	return r, nil
}

// forwardTool is the mcp-go handler of every exposed tool. It forwards the
// exact argument bytes that were authorized.
func (g *Gateway) forwardTool(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a, err := claim(ctx, "tools/call", req.Params.Name)
	if err != nil {
		return nil, err
	}
	r, err := g.request(ctx, a)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	res, err := g.opts.Upstream.CallTool(ctx, r)
	a.end()
	g.recordOutcome(ctx, a, res != nil && res.IsError, err, time.Since(start))
	if err != nil {
		return nil, fmt.Errorf("tool server %q failed: %w", a.target.Server, err)
	}
	return res, nil
}

// forwardPrompt is the mcp-go handler of every exposed prompt.
func (g *Gateway) forwardPrompt(ctx context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
	a, err := claim(ctx, "prompts/get", req.Params.Name)
	if err != nil {
		return nil, err
	}
	r, err := g.request(ctx, a)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	res, err := g.opts.Upstream.GetPrompt(ctx, r)
	a.end()
	g.recordOutcome(ctx, a, false, err, time.Since(start))
	return res, err
}

// forwardResource is the mcp-go handler of every exposed resource and
// resource template. Contents come back under their exposed URIs.
func (g *Gateway) forwardResource(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	a, err := claim(ctx, "resources/read", req.Params.URI)
	if err != nil {
		return nil, err
	}
	r, err := g.request(ctx, a)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	res, err := g.opts.Upstream.ReadResource(ctx, r)
	a.end()
	g.recordOutcome(ctx, a, false, err, time.Since(start))
	if err != nil {
		return nil, err
	}
	if g.opts.Unprefixed != "" {
		return res.Contents, nil
	}
	return exposeContents(a.target.Server, res.Contents), nil
}

func exposeContents(server string, contents []mcp.ResourceContents) []mcp.ResourceContents {
	for i, c := range contents {
		switch v := c.(type) {
		case mcp.TextResourceContents:
			v.URI = upstream.JoinURI(server, v.URI)
			contents[i] = v
		case mcp.BlobResourceContents:
			v.URI = upstream.JoinURI(server, v.URI)
			contents[i] = v
		}
	}
	return contents
}

// completer forwards completion/complete for prompts and templates.
type completer struct{ g *Gateway }

// CompletePromptArgument forwards a completion for a prompt argument.
func (c completer) CompletePromptArgument(ctx context.Context, _ string, arg mcp.CompleteArgument, cc mcp.CompleteContext) (*mcp.Completion, error) {
	return c.complete(ctx, arg, cc, true)
}

// CompleteResourceArgument forwards a completion for a template argument.
func (c completer) CompleteResourceArgument(ctx context.Context, _ string, arg mcp.CompleteArgument, cc mcp.CompleteContext) (*mcp.Completion, error) {
	return c.complete(ctx, arg, cc, false)
}

func (c completer) complete(ctx context.Context, arg mcp.CompleteArgument, cc mcp.CompleteContext, prompt bool) (*mcp.Completion, error) {
	a, err := claim(ctx, "completion/complete", "")
	if err != nil {
		return nil, err
	}
	r, err := c.g.request(ctx, a)
	if err != nil {
		return nil, err
	}
	params := mcp.CompleteParams{Argument: arg, Context: cc}
	if prompt {
		params.Ref = mcp.PromptReference{Type: "ref/prompt", Name: a.target.Name}
	} else {
		params.Ref = mcp.ResourceReference{Type: "ref/resource", URI: a.target.Name}
	}
	start := time.Now()
	res, err := c.g.opts.Upstream.Complete(ctx, r, params)
	a.end()
	c.g.recordOutcome(ctx, a, false, err, time.Since(start))
	if err != nil {
		return nil, err
	}
	return &res.Completion, nil
}

func (g *Gateway) issueToken(a *admitted) (string, error) {
	tok, _, err := g.opts.Tokens.Issue(g.tokenClaims(a))
	return tok, err
}

// tokenClaims are the claims of the call's transaction token.
func (g *Gateway) tokenClaims(a *admitted) txntoken.Claims {
	chain := make([]string, 0, len(a.decision.Chain)+1)
	for _, h := range a.decision.Chain {
		chain = append(chain, h.SPIFFEID)
	}
	if len(chain) == 0 || chain[len(chain)-1] != a.caller.ID.String() {
		chain = append(chain, a.caller.ID.String())
	}
	return txntoken.Claims{
		Subject: a.decision.SponsorSubject, SponsorIssuer: a.decision.SponsorIssuer,
		Audience: ToolServerID(g.opts.TrustDomain, a.target.Server).String(),
		RunID:    a.runID, Txn: a.txn, Actor: txntoken.NewActor(chain),
		Scope:           txntoken.Scope{Server: a.target.Server, Tool: a.target.Name, Grant: a.decision.GrantID},
		ArgumentsDigest: a.argumentsDigest(),
	}
}

// forwardMeta encodes the client's _meta without any gateway-reserved or
// per-hop key, plus the span's trace context and the transaction token.
// Keys come out sorted, so the same call always encodes the same way.
func (g *Gateway) forwardMeta(ctx context.Context, a *admitted, token string) (json.RawMessage, error) {
	keys := make([]string, 0, len(a.meta))
	for k := range a.meta {
		// Keys are compared ignoring case, since a tool server that decodes
		// _meta into a Go struct matches its fields that way.
		switch {
		case strings.EqualFold(k, txntoken.MetaKey), strings.EqualFold(k, "traceparent"), strings.EqualFold(k, "tracestate"):
		case len(k) >= len(reservedMeta) && strings.EqualFold(k[:len(reservedMeta)], reservedMeta):
			// Per-hop protocol fields; the upstream connection has its own.
		default:
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	carrier := propagation.MapCarrier{}
	g.prop.Inject(ctx, carrier)

	b := make([]byte, 0, 192+len(token))
	b = append(b, '{')
	member := func(k string, v []byte) error {
		kb, err := json.Marshal(k)
		if err != nil {
			return err
		}
		b = append(append(append(b, kb...), ':'), v...)
		b = append(b, ',')
		return nil
	}
	str := func(s string) []byte {
		v, _ := json.Marshal(s)
		return v
	}
	// The client's members keep their exact bytes, which the envelope
	// decoder has checked.
	for _, k := range keys {
		if err := member(k, a.meta[k]); err != nil {
			return nil, err
		}
	}
	for _, k := range []string{"traceparent", "tracestate"} {
		if v := carrier[k]; v != "" {
			if err := member(k, str(v)); err != nil {
				return nil, err
			}
		}
	}
	if err := member(txntoken.MetaKey, str(token)); err != nil {
		return nil, err
	}
	b[len(b)-1] = '}'
	return b, nil
}

// relayProgress sends upstream progress to the client; the upstream set
// has already restored the client's own progress token.
func (g *Gateway) relayProgress(ctx context.Context) func(mcp.ProgressNotificationParams) {
	srv := server.ServerFromContext(ctx)
	return func(p mcp.ProgressNotificationParams) {
		params := map[string]any{"progressToken": p.ProgressToken, "progress": p.Progress}
		if p.Total > 0 {
			params["total"] = p.Total
		}
		if p.Message != "" {
			params["message"] = p.Message
		}
		if srv != nil {
			_ = srv.SendNotificationToClient(ctx, "notifications/progress", params)
		}
	}
}

func (g *Gateway) recordOutcome(ctx context.Context, a *admitted, toolError bool, err error, d time.Duration) {
	rec := g.record(ctx, a)
	rec.Latency = d
	span := trace.SpanFromContext(ctx)
	switch {
	case err != nil && ctx.Err() != nil:
		rec.Outcome, rec.Error = "canceled", err.Error()
	case err != nil:
		rec.Outcome, rec.Error = "unavailable", err.Error()
		for _, s := range []trace.Span{span, a.client} {
			if s != nil {
				s.SetStatus(codes.Error, "upstream call failed")
				s.SetAttributes(attribute.String("error.type", string(upstream.Reason(err))))
			}
		}
	case toolError:
		rec.Outcome = "tool_error"
		for _, s := range []trace.Span{span, a.client} {
			if s != nil {
				s.SetAttributes(attribute.String("error.type", "tool_error"))
			}
		}
	default:
		rec.Outcome = "ok"
	}
	// The decision is already committed; the outcome is written off the
	// response path, and Serve waits for it on shutdown.
	g.outcomes.Add(1)
	go func() {
		defer g.outcomes.Done()
		if aerr := g.opts.Auditor.AppendOutcome(context.WithoutCancel(ctx), rec); aerr != nil {
			g.opts.Logger.Error("audit outcome not recorded", "txn", a.txn, "error", aerr)
		}
	}()
}
