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

// view is a run's effective grants under one policy: what the run holds
// intersected with what its agent may hold, what the sponsor is entitled
// to hand that agent and what the parent's view holds.
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
	if parent != nil && parent.grants[g.ID] == nil {
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
