package gateway

import (
	"context"
	"encoding/json"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentauth/agentauth/agentauth/authz"
	"github.com/agentauth/agentauth/mcp/upstream"
)

// Refresh reloads the upstream catalog into the MCP server. Call it from
// upstream.Options.OnChange; quarantined tools are never registered.
func (g *Gateway) Refresh() {
	cat := g.unprefix(g.opts.Upstream.Catalog())
	byName := make(map[string]exposedTool, len(cat.Tools))
	tools := make([]server.ServerTool, 0, len(cat.Tools))
	for _, t := range cat.Tools {
		def := t.Definition
		def.Name = g.exposedName(t.Server, t.Upstream)
		byName[def.Name] = exposedTool{Tool: t, annotations: annotations(t)}
		if t.Status != upstream.StatusQuarantined {
			tools = append(tools, server.ServerTool{Tool: def, Handler: g.forwardTool})
		}
	}
	g.mu.Lock()
	g.tools = byName
	g.mu.Unlock()
	g.mcp.SetTools(tools...)
	g.mcp.SetPrompts(g.prompts(cat)...)
	g.mcp.SetResources(g.resources(cat)...)
	g.mcp.SetResourceTemplates(g.templates(cat)...)
}

func (g *Gateway) prompts(cat upstream.Catalog) []server.ServerPrompt {
	out := make([]server.ServerPrompt, 0, len(cat.Prompts))
	for _, p := range cat.Prompts {
		out = append(out, server.ServerPrompt{Prompt: p.Definition, Handler: g.forwardPrompt})
	}
	return out
}

func (g *Gateway) resources(cat upstream.Catalog) []server.ServerResource {
	out := make([]server.ServerResource, 0, len(cat.Resources))
	for _, r := range cat.Resources {
		out = append(out, server.ServerResource{Resource: r.Definition, Handler: g.forwardResource})
	}
	return out
}

func (g *Gateway) templates(cat upstream.Catalog) []server.ServerResourceTemplate {
	out := make([]server.ServerResourceTemplate, 0, len(cat.ResourceTemplates))
	for _, t := range cat.ResourceTemplates {
		out = append(out, server.ServerResourceTemplate{Template: t.Definition, Handler: g.forwardResource})
	}
	return out
}

// exposedTool is a catalog tool with its annotations decoded once.
type exposedTool struct {
	upstream.Tool
	annotations map[string]any
}

func (g *Gateway) tool(name string) (exposedTool, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	t, ok := g.tools[name]
	return t, ok
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
		if !ok || t.Status == upstream.StatusQuarantined {
			continue
		}
		target := authz.Target{Kind: authz.KindTool, Server: t.Server, Name: t.Upstream, Annotations: t.annotations}
		if g.opts.Authorizer.Visible(ctx, p.RunID, target) {
			out = append(out, def)
		}
	}
	return out
}

// filterPrompts shows a run only the prompts a grant covers.
func (g *Gateway) filterPrompts(ctx context.Context, prompts []mcp.Prompt) []mcp.Prompt {
	p := principalFrom(ctx)
	if p.RunID == "" {
		return nil
	}
	out := prompts[:0:0]
	for _, def := range prompts {
		server, name := g.splitName(def.Name)
		if g.opts.Authorizer.Visible(ctx, p.RunID, authz.Target{Kind: authz.KindPrompt, Server: server, Name: name}) {
			out = append(out, def)
		}
	}
	return out
}

// filterResources shows a run only the resources a grant covers, so that
// it does not learn the URIs of resources it may not read. It runs on the
// full list: the gateway's MCP server does not paginate, so no cursor names
// a hidden resource.
func (g *Gateway) filterResources(ctx context.Context, resources []mcp.Resource) []mcp.Resource {
	p := principalFrom(ctx)
	out := []mcp.Resource{}
	if p.RunID == "" {
		return out
	}
	for _, def := range resources {
		server, uri := g.splitURI(def.URI)
		if server != "" && g.opts.Authorizer.Visible(ctx, p.RunID, authz.Target{Kind: authz.KindResource, Server: server, Name: uri}) {
			out = append(out, def)
		}
	}
	return out
}

// filterTemplates shows a run only the resource templates whose template
// text a grant covers: a URI prefix grant covers a template that starts
// with the prefix. A template a grant could cover only for some expansions
// stays hidden; reading through it is still decided URI by URI.
func (g *Gateway) filterTemplates(ctx context.Context, templates []mcp.ResourceTemplate) []mcp.ResourceTemplate {
	p := principalFrom(ctx)
	out := []mcp.ResourceTemplate{}
	if p.RunID == "" {
		return out
	}
	for _, def := range templates {
		if def.URITemplate == nil || def.URITemplate.Template == nil {
			continue
		}
		server, tmpl := g.splitURI(def.URITemplate.Raw())
		if server != "" && g.opts.Authorizer.Visible(ctx, p.RunID, authz.Target{Kind: authz.KindResource, Server: server, Name: tmpl}) {
			out = append(out, def)
		}
	}
	return out
}

func (g *Gateway) exposedName(server, name string) string {
	if g.opts.Unprefixed != "" {
		return name
	}
	return upstream.JoinName(server, name)
}

// unprefix keeps only the unprefixed server's entries, under their own
// names, when Options.Unprefixed is set.
func (g *Gateway) unprefix(cat upstream.Catalog) upstream.Catalog {
	only := g.opts.Unprefixed
	if only == "" {
		return cat
	}
	var out upstream.Catalog
	for _, t := range cat.Tools {
		if t.Server == only {
			out.Tools = append(out.Tools, t)
		}
	}
	for _, p := range cat.Prompts {
		if p.Server == only {
			p.Definition.Name = p.Upstream
			out.Prompts = append(out.Prompts, p)
		}
	}
	for _, r := range cat.Resources {
		if r.Server == only {
			r.Definition.URI = r.UpstreamURI
			out.Resources = append(out.Resources, r)
		}
	}
	for _, t := range cat.ResourceTemplates {
		if t.Server == only {
			raw, _ := json.Marshal(t.UpstreamURITemplate)
			def := &mcp.URITemplate{}
			if def.UnmarshalJSON(raw) == nil {
				t.Definition.URITemplate = def
				out.ResourceTemplates = append(out.ResourceTemplates, t)
			}
		}
	}
	return out
}
