package demo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentauth/agentauth/agentauth"
	"github.com/agentauth/agentauth/agentauth/control/api"
	"github.com/agentauth/agentauth/traces"
)

// story is the demo itself: a sponsor starts a researcher run, which
// calls tools, is denied, delegates to a summarizer, makes a chained call
// and waits for an approval.
func (d *demo) story(ctx context.Context) error {
	ctx, span := traces.Tracer().Start(ctx, "agentauth demo")
	defer span.End()
	if sc := span.SpanContext(); sc.HasTraceID() {
		d.res.TraceID = sc.TraceID().String()
	}

	sponsor := agentauth.DialSocket(d.socket())
	who, err := sponsor.Whoami(ctx)
	if err != nil {
		return fmt.Errorf("ask the control socket who we are: %w", err)
	}
	d.say("\nsponsor: %s (the local user, read from the control socket's peer credentials)", sponsorName(*who.Sponsor))

	researcher, err := d.startResearcher(ctx, sponsor)
	if err != nil {
		return err
	}
	defer researcher.Close()
	ctx, runSpan := traces.Tracer().Start(ctx, "run researcher",
		trace.WithAttributes(traces.AttrRunID.String(researcher.ID()), traces.AttrRunSPIFFEID.String(researcher.SPIFFEID().String())))
	defer runSpan.End()
	c, err := researcher.MCPClient(ctx, "researcher")
	if err != nil {
		return err
	}
	defer c.Close()
	d.sponsor = sponsorName(*who.Sponsor)
	a := &actor{d: d, name: "researcher", run: researcher, c: c, behalf: d.sponsor}

	d.say("\n1. the researcher lists its tools")
	if err := a.listTools(ctx); err != nil {
		return err
	}
	d.say("\n2. allowed calls")
	a.call(ctx, "fs__list_directory", map[string]any{"path": filepath.Join(d.files, "notes")})
	a.call(ctx, "fs__read_text_file", map[string]any{"path": filepath.Join(d.files, "notes", "plan.md")})
	if d.node {
		a.call(ctx, "everything__echo", map[string]any{"message": "hello from the researcher"})
	}

	d.say("\n3. calls outside the grant's condition (paths outside %s)", d.files)
	a.call(ctx, "fs__read_text_file", map[string]any{"path": "/etc/passwd"})
	a.call(ctx, "fs__read_text_file", map[string]any{"path": filepath.Join(d.files, "..", "policy.yaml")})

	if err := d.delegate(ctx, a); err != nil {
		return err
	}

	d.say("\n5. a chained call: the digest tool server reads the note back through the gateway")
	a.call(ctx, "digest__summarize_file", map[string]any{"path": filepath.Join(d.files, "notes", "plan.md")})

	return d.approval(ctx, a)
}

func (d *demo) startResearcher(ctx context.Context, sponsor *agentauth.Control) (*agentauth.Run, error) {
	resp, err := sponsor.StartRun(ctx, api.StartRunRequest{
		Agent:   "researcher",
		Grants:  []string{"fs-read", "fs-write", "echo", "summarize"},
		Purpose: "summarize the launch notes into a report",
		TTL:     "15m",
	})
	if err != nil {
		return nil, fmt.Errorf("start the researcher run: %w", err)
	}
	d.res.RootRunID = resp.Run.ID
	d.say("started run %s\n  agent researcher, SPIFFE ID %s\n  grants %s, expires %s",
		resp.Run.ID, resp.Run.SPIFFEID, strings.Join(resp.Run.Grants, ", "), resp.Run.ExpiresAt.Format("15:04:05"))

	bundle, err := sponsor.Bundle(ctx)
	if err != nil {
		return nil, err
	}
	d.bundlePEM = bundle
	bundlePath := filepath.Join(d.o.Dir, "bundle.pem")
	if err := os.WriteFile(bundlePath, bundle, 0o644); err != nil {
		return nil, err
	}
	e := agentauth.Enrollment{
		Gateway:        "https://" + d.g.MCPAddr + "/mcp",
		Control:        "https://" + d.g.ControlAddr,
		BootstrapToken: resp.BootstrapToken,
		RunID:          resp.Run.ID,
		SPIFFEID:       resp.Run.SPIFFEID,
		TrustBundle:    bundlePath,
		ExpiresAt:      resp.Run.ExpiresAt,
	}
	run, err := agentauth.JoinEnrollment(ctx, e)
	if err != nil {
		return nil, fmt.Errorf("join the researcher run: %w", err)
	}
	d.say("the researcher generated its key in memory and exchanged its bootstrap token for an X.509-SVID")
	return run, nil
}

// delegate starts the summarizer sub-agent with narrower grants and lets
// it try to go beyond them.
func (d *demo) delegate(ctx context.Context, parent *actor) error {
	d.say("\n4. the researcher delegates to a summarizer with narrower grants")
	child, err := parent.run.Delegate(ctx, api.DelegateRequest{
		Agent: "summarizer", Grants: []string{"fs-read-notes"},
		Purpose: "condense the launch notes", TTL: "5m",
	})
	if err != nil {
		return fmt.Errorf("delegate to the summarizer: %w", err)
	}
	d.res.ChildRunID = child.Run.ID
	d.say("child run %s (%s), chain:", child.Run.ID, child.Run.SPIFFEID)
	for i, h := range child.Run.Chain {
		d.say("  %d. %s", i+1, h.SPIFFEID)
	}
	run, err := agentauth.JoinEnrollment(ctx, child.Enrollment)
	if err != nil {
		return fmt.Errorf("join the summarizer run: %w", err)
	}
	defer run.Close()
	ctx, runSpan := traces.Tracer().Start(ctx, "run summarizer",
		trace.WithAttributes(traces.AttrRunID.String(run.ID()), traces.AttrRunSPIFFEID.String(run.SPIFFEID().String())))
	defer runSpan.End()
	c, err := run.MCPClient(ctx, "summarizer")
	if err != nil {
		return err
	}
	defer c.Close()
	s := &actor{d: d, name: "summarizer", run: run, c: c, behalf: "researcher for " + d.sponsor}
	if err := s.listTools(ctx); err != nil {
		return err
	}
	s.call(ctx, "fs__read_text_file", map[string]any{"path": filepath.Join(d.files, "notes", "risks.md")})
	s.call(ctx, "fs__read_text_file", map[string]any{"path": filepath.Join(d.files, "private", "salaries.csv")})
	s.call(ctx, "fs__write_file", map[string]any{"path": filepath.Join(d.files, "reports", "x.md"), "content": "x"})
	return nil
}

// actor is one agent run making MCP calls through the gateway.
type actor struct {
	d      *demo
	name   string
	run    *agentauth.Run
	c      *client.Client
	behalf string // who the run acts for
}

func (a *actor) listTools(ctx context.Context) error {
	res, err := a.c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		return fmt.Errorf("%s: list tools: %w", a.name, err)
	}
	names := make([]string, 0, len(res.Tools))
	for _, t := range res.Tools {
		names = append(names, t.Name)
	}
	a.d.say("\n%s (run %s, on behalf of %s) lists its tools and sees only the granted ones:\n  %s",
		a.name, shortID(a.run.ID()), a.behalf, strings.Join(names, ", "))
	return nil
}

// call calls a tool and prints the gateway's decision. A denial is part of
// the story, so it is reported, not returned.
func (a *actor) call(ctx context.Context, tool string, args map[string]any) (*mcp.CallToolResult, error) {
	ctx, span := traces.Tracer().Start(ctx, a.name+" calls "+tool, trace.WithSpanKind(trace.SpanKindClient))
	defer span.End()
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	req.Params.Arguments = args
	req.Params.Meta = &mcp.Meta{AdditionalFields: traces.InjectIntoMeta(ctx, nil)}

	res, err := a.c.CallTool(ctx, req)
	step := Step{Actor: a.name, Tool: tool}
	switch {
	case err != nil:
		step.Effect, step.Detail = "denied", err.Error()
	case res.IsError:
		step.Effect, step.Detail = "allowed", "tool error: "+firstText(res)
	default:
		step.Effect, step.Detail = "allowed", firstText(res)
	}
	a.d.res.Steps = append(a.d.res.Steps, step)
	a.d.say("  %s → %s %s: %s", a.name, tool, step.Effect, oneLine(step.Detail, 90))
	return res, err
}

func firstText(res *mcp.CallToolResult) string {
	for _, c := range res.Content {
		if t, ok := c.(mcp.TextContent); ok {
			return t.Text
		}
	}
	return ""
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
