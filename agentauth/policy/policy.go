package policy

import (
	"slices"
	"strings"
	"time"
)

// The kinds of operation a grant can cover. They equal the authz.Kind values.
const (
	KindTool       = "tool"
	KindResource   = "resource"
	KindPrompt     = "prompt"
	KindCompletion = "completion"
)

// ApproverSponsor in Approval.Approver means the run's own sponsor approves.
const ApproverSponsor = "sponsor"

// Policy is a loaded, validated and compiled policy. It is immutable once
// returned by Load, so callers may share it between goroutines.
type Policy struct {
	Agents       map[string]*Agent
	Grants       map[string]*Grant
	Entitlements []*Entitlement
	// Roles name groups of humans that may approve calls.
	Roles map[string]*SponsorSelector
	// ToolServers holds the grants of tool servers that call other tools
	// on behalf of a run, by server name.
	ToolServers map[string]*ToolServer
	// Files lists the files the policy was loaded from.
	Files []string
}

// Agent is a kind of workload that may run.
type Agent struct {
	Name        string
	Description string
	// Grants lists every grant a run of this agent may ever hold.
	Grants []string
	// MaxDelegationDepth is how many levels of sub-agent runs may be
	// started below a run of this agent; 0 forbids delegation.
	MaxDelegationDepth int
	// MaxFanOut is how many direct child runs one run of this agent may
	// start; 0 forbids delegation.
	MaxFanOut int
}

// MayHold reports whether the agent may hold the grant.
func (a *Agent) MayHold(grantID string) bool { return slices.Contains(a.Grants, grantID) }

// Grant is a scoped permission.
type Grant struct {
	ID          string
	Description string
	Tools       []NameRule
	Prompts     []NameRule
	Resources   []ResourceRule
	// Completions lists the servers whose completion/complete the grant covers.
	Completions []string
	// Condition is nil when the grant has none.
	Condition *Condition
	// Budget caps the calls of one run under this grant; 0 means no cap.
	Budget int64
	// MaxLifetime caps how long a run may hold the grant; 0 means no cap.
	MaxLifetime time.Duration
	Approval    Approval
	// BreakGlass is set for a break-glass grant, which humans take for
	// themselves and which no entitlement hands out.
	BreakGlass *BreakGlass
}

// NameRule matches tools or prompts of one server by exact name.
type NameRule struct {
	Server string
	Names  []string
}

// ResourceRule matches resources of one server by exact URI or URI prefix.
type ResourceRule struct {
	Server   string
	URIs     []string
	Prefixes []string
}

// Approval is the step-up rule of a grant: whether each call needs a
// human's approval, and whose.
type Approval struct {
	Required bool
	// Approver is ApproverSponsor, or the name of a role in Policy.Roles
	// whose members other than the run's sponsor may approve.
	Approver string
}

// BreakGlass holds the rules of a break-glass grant.
type BreakGlass struct {
	// Sponsors selects the humans who may take the grant.
	Sponsors SponsorSelector
	// Agents lists the agents a break-glass run may be of.
	Agents []string
	// MaxLifetime caps a break-glass run's lifetime.
	MaxLifetime time.Duration
}

// Entitlement is a rule letting the selected sponsors hand the listed
// grants to the listed agents.
type Entitlement struct {
	Sponsors SponsorSelector
	Agents   []string
	Grants   []string
}

// ToolServer holds the grants of one tool server for chained calls.
type ToolServer struct {
	Name   string
	Grants []string
}

// SponsorSelector selects humans; see the package documentation for the
// match rules.
type SponsorSelector struct {
	Issuer   string
	Subjects []string
	Emails   []string
	Groups   []string
	Claims   map[string][]string
}

// Identity is the part of a human's identity that selectors match.
type Identity struct {
	Issuer  string
	Subject string
	Email   string
	Groups  []string
	Claims  map[string]string
}

// Matches reports whether the selector selects the human.
func (s *SponsorSelector) Matches(id Identity) bool {
	if s.empty() {
		return false
	}
	if s.Issuer != "" && s.Issuer != id.Issuer {
		return false
	}
	if len(s.Subjects) > 0 && !slices.Contains(s.Subjects, id.Subject) {
		return false
	}
	if len(s.Emails) > 0 && (id.Email == "" || !slices.Contains(s.Emails, id.Email)) {
		return false
	}
	if len(s.Groups) > 0 && !slices.ContainsFunc(id.Groups, func(g string) bool {
		return slices.Contains(s.Groups, g)
	}) {
		return false
	}
	for claim, values := range s.Claims {
		v, ok := id.Claims[claim]
		if !ok || !slices.Contains(values, v) {
			return false
		}
	}
	return true
}

func (s *SponsorSelector) empty() bool {
	return s.Issuer == "" && len(s.Subjects) == 0 && len(s.Emails) == 0 &&
		len(s.Groups) == 0 && len(s.Claims) == 0
}

// Covers reports whether the grant covers an operation of the given kind
// on the named server. name is the tool or prompt name or the resource
// URI, and is ignored for completions.
func (g *Grant) Covers(kind, server, name string) bool {
	switch kind {
	case KindTool:
		return matchNames(g.Tools, server, name)
	case KindPrompt:
		return matchNames(g.Prompts, server, name)
	case KindResource:
		return matchResources(g.Resources, server, name)
	case KindCompletion:
		return slices.Contains(g.Completions, server)
	}
	return false
}

func matchNames(rules []NameRule, server, name string) bool {
	for _, r := range rules {
		if r.Server == server && slices.Contains(r.Names, name) {
			return true
		}
	}
	return false
}

func matchResources(rules []ResourceRule, server, uri string) bool {
	for _, r := range rules {
		if r.Server != server {
			continue
		}
		if slices.Contains(r.URIs, uri) {
			return true
		}
		for _, p := range r.Prefixes {
			if strings.HasPrefix(uri, p) {
				return true
			}
		}
	}
	return false
}

// Entitled reports whether the human may hand the grant to the agent.
// Break-glass grants are never entitled.
func (p *Policy) Entitled(id Identity, agent, grantID string) bool {
	if g := p.Grants[grantID]; g == nil || g.BreakGlass != nil {
		return false
	}
	for _, e := range p.Entitlements {
		if slices.Contains(e.Agents, agent) && slices.Contains(e.Grants, grantID) &&
			e.Sponsors.Matches(id) {
			return true
		}
	}
	return false
}

// HasRole reports whether the human is a member of the named role.
func (p *Policy) HasRole(id Identity, role string) bool {
	sel := p.Roles[role]
	return sel != nil && sel.Matches(id)
}
