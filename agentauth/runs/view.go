package runs

import (
	"slices"
	"strings"

	"github.com/agentauth/agentauth/agentauth/policy"
)

// targetKey indexes exact-name grants of a run.
type targetKey struct {
	kind, server, name string
}

// view is a run's effective grants under one policy: the grants the run
// was given that its agent may still hold, that the sponsor is still
// entitled to hand that agent, and whose coverage the parent's view still
// covers. A call must in addition pass a covering grant of every ancestor,
// which the authorizer checks.
type view struct {
	policy *policy.Policy
	grants map[string]*policy.Grant
	exact  map[targetKey][]*policy.Grant
	// prefixed holds grants with resource URI prefixes, checked in order.
	prefixed []*policy.Grant
	// depthOK is false when a policy change lowered an agent's delegation
	// depth below this run's place in the chain.
	depthOK bool
}

// buildView computes a run's view; parent is nil for a root run.
func buildView(p *policy.Policy, r *Run, parent *view) *view {
	v := &view{policy: p, grants: map[string]*policy.Grant{}, exact: map[targetKey][]*policy.Grant{}}
	agent := p.Agents[r.Agent]
	if agent == nil {
		return v
	}
	for _, id := range r.Grants {
		if g := p.Grants[id]; g != nil && holds(p, agent, r, g, parent) {
			v.grants[id] = g
		}
	}
	ids := make([]string, 0, len(v.grants))
	for id := range v.grants {
		ids = append(ids, id)
	}
	// Grants without approval first, so a call two grants cover does not
	// wait for a human needlessly; then by id for a stable order.
	slices.SortFunc(ids, func(a, b string) int {
		ga, gb := v.grants[a], v.grants[b]
		if ga.Approval.Required != gb.Approval.Required {
			if ga.Approval.Required {
				return 1
			}
			return -1
		}
		return strings.Compare(a, b)
	})
	for _, id := range ids {
		v.index(v.grants[id])
	}
	v.depthOK = parent == nil || parent.depthOK
	return v
}

func holds(p *policy.Policy, agent *policy.Agent, r *Run, g *policy.Grant, parent *view) bool {
	if parent != nil && parent.uncovered(g) != "" {
		return false
	}
	if r.BreakGlass {
		return g.BreakGlass != nil && slices.Contains(g.BreakGlass.Agents, agent.Name) &&
			g.BreakGlass.Sponsors.Matches(r.Sponsor.Identity())
	}
	return agent.MayHold(g.ID) && p.Entitled(r.Sponsor.Identity(), agent.Name, g.ID)
}

func (v *view) index(g *policy.Grant) {
	for _, rule := range g.Tools {
		for _, n := range rule.Names {
			v.add(targetKey{policy.KindTool, rule.Server, n}, g)
		}
	}
	for _, rule := range g.Prompts {
		for _, n := range rule.Names {
			v.add(targetKey{policy.KindPrompt, rule.Server, n}, g)
		}
	}
	for _, s := range g.Completions {
		v.add(targetKey{policy.KindCompletion, s, ""}, g)
	}
	for _, rule := range g.Resources {
		for _, u := range rule.URIs {
			v.add(targetKey{policy.KindResource, rule.Server, u}, g)
		}
		if len(rule.Prefixes) > 0 && !slices.Contains(v.prefixed, g) {
			v.prefixed = append(v.prefixed, g)
		}
	}
}

func (v *view) add(k targetKey, g *policy.Grant) {
	if !slices.Contains(v.exact[k], g) {
		v.exact[k] = append(v.exact[k], g)
	}
}

// match returns the grants covering the target, in preference order. The
// returned slice is shared: callers must not modify it.
func (v *view) match(kind, server, name string) []*policy.Grant {
	if kind == policy.KindCompletion {
		name = ""
	}
	exact := v.exact[targetKey{kind, server, name}]
	if kind != policy.KindResource || len(v.prefixed) == 0 {
		return exact
	}
	var out []*policy.Grant
	for _, g := range v.prefixed {
		if g.Covers(kind, server, name) && !slices.Contains(exact, g) {
			out = append(out, g)
		}
	}
	if len(out) == 0 {
		return exact
	}
	return append(slices.Clone(exact), out...)
}

// uncovered returns the first operation g covers that no grant of the
// view covers, as "kind server/name", or "" when the view covers all of g.
// A resource prefix of g is covered only by a prefix of the view that
// starts it.
func (v *view) uncovered(g *policy.Grant) string {
	if v.grants[g.ID] != nil {
		return ""
	}
	for _, r := range g.Tools {
		if n := v.missingName(policy.KindTool, r); n != "" {
			return n
		}
	}
	for _, r := range g.Prompts {
		if n := v.missingName(policy.KindPrompt, r); n != "" {
			return n
		}
	}
	for _, s := range g.Completions {
		if len(v.match(policy.KindCompletion, s, "")) == 0 {
			return policy.KindCompletion + " " + s
		}
	}
	for _, r := range g.Resources {
		if n := v.missingResource(r); n != "" {
			return n
		}
	}
	return ""
}

func (v *view) missingName(kind string, r policy.NameRule) string {
	for _, n := range r.Names {
		if len(v.match(kind, r.Server, n)) == 0 {
			return kind + " " + r.Server + "/" + n
		}
	}
	return ""
}

func (v *view) missingResource(r policy.ResourceRule) string {
	for _, u := range r.URIs {
		if len(v.match(policy.KindResource, r.Server, u)) == 0 {
			return policy.KindResource + " " + r.Server + "/" + u
		}
	}
	for _, p := range r.Prefixes {
		if !v.coversPrefix(r.Server, p) {
			return policy.KindResource + " " + r.Server + "/" + p + "*"
		}
	}
	return ""
}

func (v *view) coversPrefix(server, prefix string) bool {
	for _, g := range v.prefixed {
		for _, r := range g.Resources {
			for _, p := range r.Prefixes {
				if r.Server == server && strings.HasPrefix(prefix, p) {
					return true
				}
			}
		}
	}
	return false
}
