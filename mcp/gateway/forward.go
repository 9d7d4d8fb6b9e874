package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentauth/agentauth/agentauth/authz"
	"github.com/agentauth/agentauth/mcp/txntoken"
)

// errNotAdmitted guards the forwarding path: nothing reaches a tool server
// without a decision made for exactly this call.
var errNotAdmitted = errors.New("call refused: it carries no authorization decision")

// forwardTool is the mcp-go handler of every exposed tool. It forwards the
// exact argument bytes that were authorized, with a transaction token.
func (g *Gateway) forwardTool(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	a, ok := ctx.Value(admittedKey{}).(*admitted)
	if !ok || a.method != "tools/call" || a.exposed != req.Params.Name ||
		!a.decision.Allowed() || !a.forwarded.CompareAndSwap(false, true) {
		return nil, errNotAdmitted
	}
	token, err := g.issueToken(a)
	if err != nil {
		g.opts.Logger.Error("transaction token not issued; call stopped", "txn", a.txn, "error", err)
		return nil, fmt.Errorf("the gateway could not sign the call's transaction token")
	}
	call := ToolCall{
		Server: a.tool.Server, Tool: a.tool.Upstream, Arguments: a.arguments,
		Meta:   g.forwardMeta(ctx, a, token),
		Header: http.Header{txntoken.Header: []string{token}},
	}
	if pt, ok := a.meta["progressToken"]; ok && pt != nil {
		call.Progress = g.relayProgress(ctx, pt)
	}
	start := time.Now()
	res, err := g.opts.Upstream.CallTool(ctx, call)
	g.recordOutcome(ctx, a, res, err, time.Since(start))
	if err != nil {
		return nil, fmt.Errorf("tool server %q failed: %w", a.tool.Server, err)
	}
	return res, nil
}

func (g *Gateway) issueToken(a *admitted) (string, error) {
	chain := make([]string, 0, len(a.decision.Chain)+1)
	for _, h := range a.decision.Chain {
		chain = append(chain, h.SPIFFEID)
	}
	if len(chain) == 0 || chain[len(chain)-1] != a.caller.ID.String() {
		chain = append(chain, a.caller.ID.String())
	}
	tok, _, err := g.opts.Tokens.Issue(txntoken.Claims{
		Subject: a.decision.SponsorSubject, SponsorIssuer: a.decision.SponsorIssuer,
		Audience: ToolServerID(g.opts.TrustDomain, a.tool.Server).String(),
		RunID:    a.runID, Txn: a.txn, Actor: txntoken.NewActor(chain),
		Scope:           txntoken.Scope{Server: a.tool.Server, Tool: a.tool.Upstream, Grant: a.decision.GrantID},
		ArgumentsDigest: txntoken.ArgumentsDigest(a.arguments),
	})
	return tok, err
}

// forwardMeta is the client's _meta without any gateway-reserved key, plus
// the transaction token and the span's trace context.
func (g *Gateway) forwardMeta(ctx context.Context, a *admitted, token string) map[string]any {
	meta := make(map[string]any, len(a.meta)+3)
	for k, v := range a.meta {
		switch {
		case k == txntoken.MetaKey, k == "traceparent", k == "tracestate", k == "progressToken":
		case strings.HasPrefix(k, "io.modelcontextprotocol/"):
			// Per-hop protocol fields; the upstream connection has its own.
		default:
			meta[k] = v
		}
	}
	carrier := propagation.MapCarrier{}
	g.prop.Inject(ctx, carrier)
	for k, v := range carrier {
		meta[k] = v
	}
	meta[txntoken.MetaKey] = token
	if pt, ok := a.meta["progressToken"]; ok {
		meta["progressToken"] = pt
	}
	return meta
}

// relayProgress sends upstream progress to the client under its own token.
func (g *Gateway) relayProgress(ctx context.Context, token any) func(float64, float64, string) {
	srv := server.ServerFromContext(ctx)
	return func(progress, total float64, message string) {
		params := map[string]any{"progressToken": token, "progress": progress}
		if total > 0 {
			params["total"] = total
		}
		if message != "" {
			params["message"] = message
		}
		if srv != nil {
			_ = srv.SendNotificationToClient(ctx, "notifications/progress", params)
		}
	}
}

func (g *Gateway) recordOutcome(ctx context.Context, a *admitted, res *mcp.CallToolResult, err error, d time.Duration) {
	rec := g.record(ctx, a)
	rec.Latency = d
	span := trace.SpanFromContext(ctx)
	switch {
	case err != nil:
		rec.Outcome, rec.Error = "error", err.Error()
		span.SetStatus(codes.Error, "upstream call failed")
	case res != nil && res.IsError:
		rec.Outcome = "tool_error"
		span.SetAttributes(attribute.String("error.type", "tool_error"))
	default:
		rec.Outcome = "ok"
	}
	if aerr := g.opts.Auditor.AppendOutcome(ctx, rec); aerr != nil {
		g.opts.Logger.Error("audit outcome not recorded", "txn", a.txn, "error", aerr)
	}
}

// filterTools shows a run only the tools it may call.
func (g *Gateway) filterTools(ctx context.Context, tools []mcp.Tool) []mcp.Tool {
	p := principalFrom(ctx)
	if p.RunID == "" {
		return nil
	}
	out := tools[:0:0]
	for _, def := range tools {
		t, ok := g.tool(def.Name)
		if !ok || t.Quarantined {
			continue
		}
		target := authz.Target{Kind: authz.KindTool, Server: t.Server, Name: t.Upstream, Annotations: annotations(t)}
		if g.opts.Authorizer.Visible(ctx, p.RunID, target) {
			out = append(out, def)
		}
	}
	return out
}
