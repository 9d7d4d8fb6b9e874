package upstream

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"

	"github.com/mark3labs/mcp-go/mcp"
)

// Catalog is the merged, namespaced catalog of every server that is up.
type Catalog struct {
	// Tools holds every listed tool with its pin status; expose and call
	// only those with StatusAccepted.
	Tools             []Tool
	Prompts           []Prompt
	Resources         []Resource
	ResourceTemplates []ResourceTemplate
}

// Tool is one upstream tool.
type Tool struct {
	Server   string
	Upstream string // the name on the server
	// Definition is the server's definition with Name namespaced.
	Definition mcp.Tool
	Status     PinStatus
	Digest     string
	Reason     string // quarantine reason, empty unless quarantined
	// paramHeaders is set when the input schema mirrors arguments into
	// Mcp-Param-* headers.
	paramHeaders bool
}

// Prompt is one upstream prompt; Definition.Name is namespaced.
type Prompt struct {
	Server     string
	Upstream   string
	Definition mcp.Prompt
}

// Resource is one upstream resource; Definition.URI is namespaced.
type Resource struct {
	Server      string
	UpstreamURI string
	Definition  mcp.Resource
}

// ResourceTemplate is one upstream resource template; its URI template is
// namespaced.
type ResourceTemplate struct {
	Server              string
	UpstreamURITemplate string
	Definition          mcp.ResourceTemplate
}

// serverCatalog is the catalog of one server, keyed by upstream name.
type serverCatalog struct {
	tools     map[string]Tool
	prompts   []Prompt
	resources []Resource
	templates []ResourceTemplate
}

// list reads every list the server's capabilities declare.
func (c *conn) list(ctx context.Context, s *session) (serverCatalog, error) {
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	caps := s.client.GetServerCapabilities()
	var cat serverCatalog
	var err error
	if caps.Tools != nil {
		if cat.tools, err = c.listTools(ctx, s); err != nil {
			return cat, fmt.Errorf("list tools: %w", err)
		}
	}
	if caps.Prompts != nil {
		if cat.prompts, err = c.listPrompts(ctx, s); err != nil {
			return cat, fmt.Errorf("list prompts: %w", err)
		}
	}
	if caps.Resources != nil {
		if cat.resources, cat.templates, err = c.listResources(ctx, s); err != nil {
			return cat, fmt.Errorf("list resources: %w", err)
		}
	}
	return cat, nil
}

// listTools lists, checks and pins the server's tools.
func (c *conn) listTools(ctx context.Context, s *session) (map[string]Tool, error) {
	res, err := s.client.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		return nil, err
	}
	count := map[string]int{}
	for _, t := range res.Tools {
		count[t.Name]++
	}
	tools := map[string]Tool{}
	for _, def := range res.Tools {
		t, err := c.admit(ctx, def, count[def.Name])
		if err != nil {
			return nil, err
		}
		tools[def.Name] = t
	}
	return tools, nil
}

// admit quarantines or pins one listed tool.
func (c *conn) admit(ctx context.Context, def mcp.Tool, listed int) (Tool, error) {
	server, pins := c.cfg.Name, c.set.pins
	t := Tool{Server: server, Upstream: def.Name, Definition: def}
	t.Definition.Name = JoinName(server, def.Name)
	t.paramHeaders = len(mcp.ExtractParamHeaderBindings(&def)) > 0

	reason := ""
	if err := validToolName(server, def.Name); err != nil {
		reason = err.Error()
	} else if listed > 1 {
		reason = fmt.Sprintf("the server lists tool %q %d times", def.Name, listed)
	}
	if reason != "" {
		// Warn once per session, not on every listing.
		level := slog.LevelWarn
		if prev, ok := c.tool(def.Name); ok && prev.Status == StatusQuarantined {
			level = slog.LevelDebug
		}
		c.log.Log(ctx, level, "upstream tool quarantined", "tool", def.Name, "reason", reason)
		t.Status, t.Reason = StatusQuarantined, reason
		return t, pins.Quarantine(ctx, server, def.Name, reason)
	}

	digest, definition, err := Digest(def)
	if err != nil {
		return t, err
	}
	status, firstUse, err := pins.Observe(ctx, server, def.Name, digest, definition)
	if err != nil {
		return t, err
	}
	switch {
	case firstUse:
		c.log.Info("upstream tool accepted on first use", "tool", def.Name, "digest", digest)
	case status == StatusChanged:
		c.log.Warn("upstream tool definition changed; calls are denied until it is accepted",
			"tool", def.Name, "digest", digest)
	}
	t.Status, t.Digest = status, digest
	return t, nil
}

func (c *conn) listPrompts(ctx context.Context, s *session) ([]Prompt, error) {
	res, err := s.client.ListPrompts(ctx, mcp.ListPromptsRequest{})
	if err != nil {
		return nil, err
	}
	prompts := make([]Prompt, 0, len(res.Prompts))
	for _, def := range res.Prompts {
		p := Prompt{Server: c.cfg.Name, Upstream: def.Name, Definition: def}
		p.Definition.Name = JoinName(c.cfg.Name, def.Name)
		prompts = append(prompts, p)
	}
	return prompts, nil
}

func (c *conn) listResources(ctx context.Context, s *session) ([]Resource, []ResourceTemplate, error) {
	res, err := s.client.ListResources(ctx, mcp.ListResourcesRequest{})
	if err != nil {
		return nil, nil, err
	}
	resources := make([]Resource, 0, len(res.Resources))
	for _, def := range res.Resources {
		r := Resource{Server: c.cfg.Name, UpstreamURI: def.URI, Definition: def}
		r.Definition.URI = JoinURI(c.cfg.Name, def.URI)
		resources = append(resources, r)
	}

	tres, err := s.client.ListResourceTemplates(ctx, mcp.ListResourceTemplatesRequest{})
	if err != nil {
		return nil, nil, err
	}
	templates := make([]ResourceTemplate, 0, len(tres.ResourceTemplates))
	for _, def := range tres.ResourceTemplates {
		t, err := c.namespaceTemplate(def)
		if err != nil {
			return nil, nil, err
		}
		templates = append(templates, t)
	}
	return resources, templates, nil
}

func (c *conn) namespaceTemplate(def mcp.ResourceTemplate) (ResourceTemplate, error) {
	t := ResourceTemplate{Server: c.cfg.Name, Definition: def}
	if def.URITemplate == nil || def.URITemplate.Template == nil {
		return t, fmt.Errorf("resource template %q has no uriTemplate", def.Name)
	}
	t.UpstreamURITemplate = def.URITemplate.Raw()
	raw, err := json.Marshal(JoinURI(c.cfg.Name, t.UpstreamURITemplate))
	if err != nil {
		return t, err
	}
	t.Definition.URITemplate = &mcp.URITemplate{}
	if err := t.Definition.URITemplate.UnmarshalJSON(raw); err != nil {
		return t, fmt.Errorf("resource template %q: %w", t.UpstreamURITemplate, err)
	}
	return t, nil
}

// refresh re-lists the server after a list_changed notification.
func (c *conn) refresh(s *session, kind string) {
	ctx, cancel := context.WithTimeout(c.set.ctx, c.set.opts.StartTimeout)
	defer cancel()
	cat, err := c.list(ctx, s)
	if err != nil && c.set.ctx.Err() == nil {
		c.log.Error("upstream list after change notification failed", "kind", kind, "err", err)
	}
	if err != nil {
		return
	}
	c.mu.Lock()
	if c.sess != s {
		c.mu.Unlock()
		return
	}
	c.catalog = cat
	c.mu.Unlock()
	c.set.changed(Change{Server: c.cfg.Name, Kind: kind})
}

// relist lists the server's catalog again and takes it when it differs
// from the one in use. A transport failure ends the session, so that the
// server is reconnected.
func (c *conn) relist(s *session) {
	ctx, cancel := context.WithTimeout(c.set.ctx, c.set.opts.StartTimeout)
	defer cancel()
	cat, err := c.list(ctx, s)
	if err != nil {
		if c.set.ctx.Err() == nil {
			c.log.Warn("upstream periodic listing failed", "err", err)
			_ = c.checkTransport(ctx, s, err)
		}
		return
	}
	c.mu.Lock()
	if c.sess != s || cat.fingerprint() == c.catalog.fingerprint() {
		c.mu.Unlock()
		return
	}
	c.catalog = cat
	c.mu.Unlock()
	c.log.Info("upstream catalog changed without a list_changed notification")
	c.set.changed(Change{Server: c.cfg.Name, Kind: "server"})
}

// fingerprint digests everything of a catalog that the gateway exposes or
// checks, so that two listings can be compared.
func (sc serverCatalog) fingerprint() string {
	type tool struct{ Name, Digest, Status, Reason string }
	tools := make([]tool, 0, len(sc.tools))
	for name, t := range sc.tools {
		tools = append(tools, tool{name, t.Digest, string(t.Status), t.Reason})
	}
	sort.Slice(tools, func(i, j int) bool { return tools[i].Name < tools[j].Name })
	b, err := json.Marshal(struct {
		Tools     []tool
		Prompts   []Prompt
		Resources []Resource
		Templates []ResourceTemplate
	}{tools, sc.prompts, sc.resources, sc.templates})
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// tool returns the server's tool of upstream name.
func (c *conn) tool(name string) (Tool, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.catalog.tools[name]
	return t, ok
}

// setStatus records a tool's new pin status in the live catalog.
func (c *conn) setStatus(name string, status PinStatus) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.catalog.tools[name]; ok {
		t.Status = status
		c.catalog.tools[name] = t
	}
}

// ParamHeaders reports whether the tool's input schema mirrors arguments
// into Mcp-Param-* headers.
func (t Tool) ParamHeaders() bool { return t.paramHeaders }
