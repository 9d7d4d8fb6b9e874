package policy

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// namePattern restricts agent, grant, role and tool server names, so they
// are safe inside SPIFFE ID paths and error messages.
var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// builder merges policy files and validates the result.
type builder struct {
	p      *Policy
	origin map[string]string // "grant x" to the file that declared it
	lines  []string          // lines of the file being added, for positions
}

func newBuilder() *builder {
	return &builder{
		p: &Policy{
			Agents: map[string]*Agent{}, Grants: map[string]*Grant{},
			Roles: map[string]*SponsorSelector{}, ToolServers: map[string]*ToolServer{},
		},
		origin: map[string]string{},
	}
}

func (b *builder) declare(file, kind, name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("%s: %s name %q is invalid; use lower-case letters, digits, '.', '_' or '-'",
			file, kind, name)
	}
	key := kind + " " + name
	if prev, ok := b.origin[key]; ok {
		return fmt.Errorf("%s: %s %q is already declared in %s", file, kind, name, prev)
	}
	b.origin[key] = file
	return nil
}

func (b *builder) add(file string, data []byte) error {
	doc, err := decodeDocument(file, data)
	if err != nil {
		return err
	}
	b.p.Files = append(b.p.Files, file)
	b.lines = strings.Split(string(data), "\n")
	for _, name := range sortedKeys(doc.Agents) {
		if err := b.addAgent(file, name, doc.Agents[name]); err != nil {
			return err
		}
	}
	for _, id := range sortedKeys(doc.Grants) {
		if err := b.addGrant(file, id, doc.Grants[id]); err != nil {
			return err
		}
	}
	for _, name := range sortedKeys(doc.Roles) {
		if err := b.declare(file, "role", name); err != nil {
			return err
		}
		sel := doc.Roles[name].selector()
		b.p.Roles[name] = &sel
	}
	for _, name := range sortedKeys(doc.ToolServers) {
		if err := b.declare(file, "tool server", name); err != nil {
			return err
		}
		b.p.ToolServers[name] = &ToolServer{Name: name, Grants: doc.ToolServers[name].Grants}
	}
	for _, e := range doc.Entitlements {
		b.p.Entitlements = append(b.p.Entitlements,
			&Entitlement{Sponsors: e.Sponsors.selector(), Agents: e.Agents, Grants: e.Grants})
		b.origin[fmt.Sprintf("entitlement %d", len(b.p.Entitlements))] = file
	}
	return nil
}

func (b *builder) addAgent(file, name string, d agentDoc) error {
	if err := b.declare(file, "agent", name); err != nil {
		return err
	}
	if d.MaxDelegationDepth < 0 || d.MaxFanOut < 0 {
		return fmt.Errorf("%s: agent %q: max_delegation_depth and max_fan_out must not be negative", file, name)
	}
	b.p.Agents[name] = &Agent{Name: name, Description: d.Description, Grants: d.Grants,
		MaxDelegationDepth: d.MaxDelegationDepth, MaxFanOut: d.MaxFanOut}
	return nil
}

func (b *builder) addGrant(file, id string, d grantDoc) error {
	if err := b.declare(file, "grant", id); err != nil {
		return err
	}
	what := fmt.Sprintf("grant %q", id)
	g := &Grant{ID: id, Description: d.Description, Completions: d.Completions, Budget: d.Budget}
	if d.Budget < 0 {
		return fmt.Errorf("%s: %s: budget must not be negative", file, what)
	}
	var err error
	if g.MaxLifetime, err = parseLifetime(file, what, d.MaxLifetime); err != nil {
		return err
	}
	for _, r := range d.Tools {
		g.Tools = append(g.Tools, NameRule{Server: r.Server, Names: r.Names})
	}
	for _, r := range d.Prompts {
		g.Prompts = append(g.Prompts, NameRule{Server: r.Server, Names: r.Names})
	}
	for _, r := range d.Resources {
		g.Resources = append(g.Resources, ResourceRule{Server: r.Server, URIs: r.URIs, Prefixes: r.Prefixes})
	}
	if err := checkRules(file, what, g); err != nil {
		return err
	}
	if g.Condition, err = b.grantCondition(file, &d.Condition); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if d.Approval != nil {
		if d.Approval.Approver == "" {
			return fmt.Errorf("%s: %s: approval.approver is missing; use \"sponsor\" or a role name", file, what)
		}
		g.Approval = Approval{Required: true, Approver: d.Approval.Approver}
	}
	if d.BreakGlass != nil {
		if g.BreakGlass, err = breakGlass(file, what, d.BreakGlass); err != nil {
			return err
		}
	}
	b.p.Grants[id] = g
	return nil
}

func checkRules(file, what string, g *Grant) error {
	if len(g.Tools)+len(g.Prompts)+len(g.Resources)+len(g.Completions) == 0 {
		return fmt.Errorf("%s: %s covers nothing; list tools, prompts, resources or completions", file, what)
	}
	for _, r := range append(slices.Clone(g.Tools), g.Prompts...) {
		if r.Server == "" || len(r.Names) == 0 {
			return fmt.Errorf("%s: %s: every tools or prompts entry needs a server and names", file, what)
		}
	}
	for _, r := range g.Resources {
		if r.Server == "" || len(r.URIs)+len(r.Prefixes) == 0 {
			return fmt.Errorf("%s: %s: every resources entry needs a server and uris or uri_prefixes", file, what)
		}
		if slices.Contains(r.Prefixes, "") {
			return fmt.Errorf("%s: %s: an empty uri_prefixes entry would match every resource", file, what)
		}
	}
	return nil
}

func (b *builder) grantCondition(file string, n *yaml.Node) (*Condition, error) {
	if n.Kind == 0 {
		return nil, nil
	}
	pos := Position{File: file, Line: n.Line, Column: n.Column}
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" || n.Value == "" {
		return nil, fmt.Errorf("%s: condition must be a non-empty string", pos)
	}
	block := n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0
	indent := 0
	if block && n.Line < len(b.lines) {
		// A block scalar's text starts on the next line; its indentation
		// is that of its first line.
		next := b.lines[n.Line]
		indent = len(next) - len(strings.TrimLeft(next, " "))
	}
	if !block && n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
		pos.Column++ // the opening quote
	}
	return compileCondition(n.Value, pos, block, indent)
}

func breakGlass(file, what string, d *breakGlassDoc) (*BreakGlass, error) {
	max, err := parseLifetime(file, what+" break_glass", d.MaxLifetime)
	if err != nil {
		return nil, err
	}
	if max == 0 {
		return nil, fmt.Errorf("%s: %s: break_glass.max_lifetime is required", file, what)
	}
	bg := &BreakGlass{Sponsors: d.Sponsors.selector(), Agents: d.Agents, MaxLifetime: max}
	if bg.Sponsors.empty() || len(bg.Agents) == 0 {
		return nil, fmt.Errorf("%s: %s: break_glass needs sponsors and agents", file, what)
	}
	return bg, nil
}

// finish checks every cross reference once all files are in.
func (b *builder) finish() (*Policy, error) {
	p := b.p
	for _, a := range p.Agents {
		for _, g := range a.Grants {
			if p.Grants[g] == nil {
				return nil, fmt.Errorf("%s: agent %q lists grant %q, which is not declared",
					b.origin["agent "+a.Name], a.Name, g)
			}
		}
	}
	for _, g := range p.Grants {
		if err := b.checkGrantRefs(g); err != nil {
			return nil, err
		}
	}
	for i, e := range p.Entitlements {
		if err := b.checkEntitlement(i, e); err != nil {
			return nil, err
		}
	}
	for _, ts := range p.ToolServers {
		for _, g := range ts.Grants {
			if p.Grants[g] == nil {
				return nil, fmt.Errorf("%s: tool server %q lists grant %q, which is not declared",
					b.origin["tool server "+ts.Name], ts.Name, g)
			}
		}
	}
	keep := map[string]bool{}
	for _, g := range p.Grants {
		if g.Condition != nil {
			keep[g.Condition.Source] = true
		}
	}
	programs.retain(keep)
	return p, nil
}

func (b *builder) checkGrantRefs(g *Grant) error {
	file := b.origin["grant "+g.ID]
	if a := g.Approval.Approver; g.Approval.Required && a != ApproverSponsor && b.p.Roles[a] == nil {
		return fmt.Errorf("%s: grant %q: approver %q is neither \"sponsor\" nor a declared role", file, g.ID, a)
	}
	if g.BreakGlass == nil {
		return nil
	}
	for _, a := range g.BreakGlass.Agents {
		if b.p.Agents[a] == nil {
			return fmt.Errorf("%s: break-glass grant %q names agent %q, which is not declared", file, g.ID, a)
		}
	}
	return nil
}

func (b *builder) checkEntitlement(i int, e *Entitlement) error {
	file := b.origin[fmt.Sprintf("entitlement %d", i+1)]
	if e.Sponsors.empty() {
		return fmt.Errorf("%s: entitlement %d selects no sponsors; set issuer, subjects, emails, groups or claims", file, i+1)
	}
	for _, a := range e.Agents {
		if b.p.Agents[a] == nil {
			return fmt.Errorf("%s: entitlement %d names agent %q, which is not declared", file, i+1, a)
		}
	}
	for _, g := range e.Grants {
		grant := b.p.Grants[g]
		switch {
		case grant == nil:
			return fmt.Errorf("%s: entitlement %d names grant %q, which is not declared", file, i+1, g)
		case grant.BreakGlass != nil:
			return fmt.Errorf("%s: entitlement %d names break-glass grant %q; humans take it with "+
				"break-glass, never through an entitlement", file, i+1, g)
		case !slices.ContainsFunc(e.Agents, func(a string) bool { return b.p.Agents[a].MayHold(g) }):
			return fmt.Errorf("%s: entitlement %d hands grant %q to agents %v, none of whose grants list it",
				file, i+1, g, e.Agents)
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
