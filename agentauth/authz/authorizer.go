package authz

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/agentauth/agentauth/agentauth/policy"
	"github.com/agentauth/agentauth/agentauth/runs"
)

// Authorizer decides calls against the runs a runs.Manager holds and the
// policy in force. Its methods are safe for concurrent use and read only
// memory, except when a call needs an approval recorded or used.
type Authorizer struct {
	runs      *runs.Manager
	toolsPath string // "spiffe://<td>/tools/"
	chains    chainCache
	warned    warnOnce
}

// New returns an Authorizer over the manager's runs.
func New(m *runs.Manager) *Authorizer {
	return &Authorizer{runs: m, toolsPath: "spiffe://" + m.TrustDomain() + "/tools/"}
}

// ToolServerSPIFFEID returns the SPIFFE ID a tool server presents when it
// calls other tools on behalf of a run.
func ToolServerSPIFFEID(trustDomain, server string) string {
	return "spiffe://" + trustDomain + "/tools/" + server
}

// Authorize decides one call. The effective rights are the intersection
// along the whole chain: the sponsor's entitlements, every run's grants
// from the root run down to req.RunID, and, for a call a tool server makes
// on the run's behalf (req.Via), that tool server's own grants. An allowed
// call is counted against the budget of the grant it matched in the run
// and in every ancestor. Any error is a denial, never an allow.
func (a *Authorizer) Authorize(ctx context.Context, req Request) Decision {
	if req.Now.IsZero() {
		req.Now = a.runs.Now()
	}
	live, d, ok := a.checkRun(req.RunID, req.Now)
	if !ok {
		return d
	}
	if req.Via != "" {
		d.Chain = a.chains.get(live, req.Via)
	}
	server, ok := a.viaServer(req.Via)
	if !ok {
		return d.deny(ReasonUnauthenticated, fmt.Sprintf("caller %q is not a tool server SPIFFE ID of this trust domain", req.Via))
	}
	if k := req.Target.Kind; k != KindTool && k != KindResource && k != KindPrompt && k != KindCompletion {
		return d.deny(ReasonMalformedRequest, fmt.Sprintf("target kind %q is unknown", k))
	}
	var buf [maxStackHops]runs.Use
	uses, d, ok := a.match(live, server, &req, d, buf[:0])
	if !ok {
		return d
	}
	return a.finish(ctx, live, uses, &req, d)
}

// checkRun looks the run up and checks the whole chain is live.
func (a *Authorizer) checkRun(runID string, now time.Time) (*runs.Live, Decision, bool) {
	var d Decision
	live, ok := a.runs.Lookup(runID)
	if !ok {
		return nil, d.deny(ReasonRunUnknown, fmt.Sprintf("run %q is not known", runID)), false
	}
	sp := live.Sponsor()
	d.SponsorIssuer, d.SponsorSubject, d.BreakGlass = sp.Issuer, sp.Subject, live.BreakGlass()
	d.Chain = a.chains.get(live, "")
	if !live.SponsorActive() {
		return nil, d.deny(ReasonSponsorInactive, "the run's sponsor is deactivated"), false
	}
	for hop := live; hop != nil; hop = hop.Parent() {
		if hop.Revoked() {
			return nil, d.deny(ReasonRunRevoked, "run "+hop.ID()+" was revoked"), false
		}
		if !now.Before(hop.Expiry()) {
			return nil, d.deny(ReasonRunExpired, "run "+hop.ID()+" has expired"), false
		}
	}
	if !live.DepthAllowed() {
		return nil, d.deny(ReasonChainTooDeep, "the chain is deeper than the policy now allows"), false
	}
	return live, d, true
}

// viaServer returns the tool server name of a Via SPIFFE ID, or "" for a
// direct call.
func (a *Authorizer) viaServer(via string) (string, bool) {
	if via == "" {
		return "", true
	}
	name, ok := strings.CutPrefix(via, a.toolsPath)
	if !ok || name == "" || strings.ContainsAny(name, "/?#") {
		return "", false
	}
	return name, true
}

// maxStackHops sizes the buffer of grant uses kept on the stack; deeper
// chains still work and allocate.
const maxStackHops = 8

// match finds, for the caller and every ancestor in turn, a grant that
// covers the target and whose condition holds, intersected with the tool
// server's grants for a chained call. uses receives one entry per run,
// caller first.
func (a *Authorizer) match(live *runs.Live, server string, req *Request, d Decision,
	uses []runs.Use) ([]runs.Use, Decision, bool) {
	t := &req.Target
	candidates := live.Match(string(t.Kind), t.Server, t.Name)
	if len(candidates) == 0 {
		return nil, d.deny(ReasonToolNotGranted, fmt.Sprintf("no grant of run %s covers %s %q on server %q",
			live.ID(), t.Kind, t.Name, t.Server)), false
	}
	call := newCall(live, req)
	defer calls.Put(call)
	if server != "" {
		ok, reason, msg, cerr := a.toolServerAllows(live.Policy(), server, call, t)
		if cerr != nil {
			cerr.run = live.ID()
			return nil, a.policyError(d, msg, cerr), false
		}
		if !ok {
			return nil, d.deny(reason, msg), false
		}
	}
	var evalErr *conditionError
	for _, g := range candidates {
		call.Calls = live.Calls(g.ID)
		ok, err := holds(g, call)
		if err != nil {
			evalErr = &conditionError{run: live.ID(), grant: g.ID, err: err}
		}
		if err == nil && ok {
			uses = append(uses[:0], runs.Use{Live: live, Grant: g})
			var cerr *conditionError
			if uses, ok, cerr = ancestorsAllow(live, t, call, uses); ok {
				d.GrantID = g.ID
				return uses, d, true
			}
			if cerr != nil {
				evalErr = cerr
			}
		}
	}
	if evalErr != nil {
		return nil, a.policyError(d, "a grant condition could not be evaluated for this call", evalErr), false
	}
	d.GrantID = candidates[0].ID
	return nil, d.deny(ReasonConditionFalse, fmt.Sprintf("the conditions of the grants covering %s %q "+
		"do not hold for this call along the chain", t.Kind, t.Name)), false
}

// ancestorsAllow finds a covering grant whose condition holds in every
// ancestor of live, appending each to uses. A grant already passed lower
// in the chain is not evaluated again, since its condition is the same.
func ancestorsAllow(live *runs.Live, t *Target, call *policy.Call, uses []runs.Use) ([]runs.Use, bool, *conditionError) {
	var evalErr *conditionError
	for hop := live.Parent(); hop != nil; hop = hop.Parent() {
		found := false
		for _, h := range hop.Match(string(t.Kind), t.Server, t.Name) {
			ok := passed(uses, h)
			if !ok {
				var err error
				call.Calls = hop.Calls(h.ID)
				if ok, err = holds(h, call); err != nil {
					evalErr = &conditionError{run: hop.ID(), grant: h.ID, err: err}
				}
			}
			if ok {
				uses = append(uses, runs.Use{Live: hop, Grant: h})
				found = true
				break
			}
		}
		if !found {
			return uses, false, evalErr
		}
	}
	return uses, true, nil
}

func passed(uses []runs.Use, g *policy.Grant) bool {
	for _, u := range uses {
		if u.Grant == g {
			return true
		}
	}
	return false
}

// toolServerAllows checks the tool server's own grants for a chained call.
// A condition that failed to evaluate is returned as a *conditionError,
// without its run.
func (a *Authorizer) toolServerAllows(p *policy.Policy, server string, call *policy.Call,
	t *Target) (bool, Reason, string, *conditionError) {
	ts := p.ToolServers[server]
	if ts == nil {
		return false, ReasonToolNotGranted, fmt.Sprintf("tool server %q has no grants in the policy", server), nil
	}
	covered, evalErr := false, (*conditionError)(nil)
	for _, id := range ts.Grants {
		g := p.Grants[id]
		if g == nil || !g.Covers(string(t.Kind), t.Server, t.Name) {
			continue
		}
		covered = true
		ok, err := holds(g, call)
		if ok {
			return true, "", "", nil
		}
		if err != nil {
			evalErr = &conditionError{grant: g.ID, err: err}
		}
	}
	switch {
	case !covered:
		return false, ReasonToolNotGranted, fmt.Sprintf("no grant of tool server %q covers %s %q on server %q",
			server, t.Kind, t.Name, t.Server), nil
	case evalErr != nil:
		return false, ReasonPolicyError, "a tool server grant condition could not be evaluated for this call", evalErr
	}
	return false, ReasonConditionFalse, fmt.Sprintf("the conditions of tool server %q's grants do not hold for this call", server), nil
}

func holds(g *policy.Grant, call *policy.Call) (bool, error) {
	if g.Condition == nil {
		return true, nil
	}
	return g.Condition.Eval(call)
}

// finish applies budgets and approval to the grants matched along the
// chain. The first of them (caller first) that needs approval decides
// whose approval the call needs.
func (a *Authorizer) finish(ctx context.Context, live *runs.Live, uses []runs.Use, req *Request, d Decision) Decision {
	if runs.Exhausted(uses) {
		return d.deny(ReasonBudgetExhausted, fmt.Sprintf("run %s or a run above it has no calls left under grant %q",
			live.ID(), d.GrantID))
	}
	approved := false
	for _, u := range uses {
		if u.Grant.Approval.Required {
			var ok bool
			if d, ok = a.approval(ctx, live, u.Grant, req, d); !ok {
				return d
			}
			approved = true
			break
		}
	}
	if !runs.ConsumeAll(uses) {
		return d.deny(ReasonBudgetExhausted, fmt.Sprintf("run %s or a run above it has no calls left under grant %q",
			live.ID(), d.GrantID))
	}
	d.Effect, d.Reason, d.Message = Allow, ReasonGranted, "allowed by grant "+d.GrantID
	switch {
	case live.BreakGlass():
		d.Reason, d.Message = ReasonBreakGlass, "allowed by break-glass grant "+d.GrantID
	case approved:
		d.Reason, d.Message = ReasonApproved, "allowed by grant "+d.GrantID+" with approval "+d.ApprovalID
	}
	return d
}

// approval requests or uses a human's approval for the call.
func (a *Authorizer) approval(ctx context.Context, live *runs.Live, g *policy.Grant, req *Request, d Decision) (Decision, bool) {
	c := runs.ApprovalCall{Live: live, Grant: g, Kind: string(req.Target.Kind), Server: req.Target.Server,
		Name: req.Target.Name, Args: req.Arguments}
	if req.ApprovalID == "" {
		id, err := a.runs.RequestApproval(ctx, c)
		if err != nil {
			return a.storeError(d, live.ID(), "the approval request could not be recorded", "record approval", err), false
		}
		d.Effect, d.Reason, d.ApprovalID = ApprovalRequired, ReasonApprovalRequired, id
		d.Message = fmt.Sprintf("grant %q needs a human's approval; approval %s is pending", g.ID, id)
		return d, false
	}
	d.ApprovalID = req.ApprovalID
	used, st, err := a.runs.UseApproval(ctx, req.ApprovalID, c)
	switch {
	case errors.Is(err, runs.ErrNotFound), errors.Is(err, runs.ErrConflict):
		return d.deny(ReasonApprovalDenied, err.Error()), false
	case err != nil:
		return a.storeError(d, live.ID(), "the approval could not be checked", "check approval "+req.ApprovalID, err), false
	case used:
		return d, true
	case st == runs.ApprovalPending:
		d.Effect, d.Reason = ApprovalRequired, ReasonApprovalRequired
		d.Message = "approval " + req.ApprovalID + " is still pending"
		return d, false
	}
	return d.deny(ReasonApprovalDenied, fmt.Sprintf("approval %s is %s", req.ApprovalID, st)), false
}

// Visible reports whether the run may see the target in a list such as
// tools/list: the run and its chain are live and a grant covers the
// target. Conditions, budgets and approvals are not checked, nothing is
// counted and no approval is requested.
func (a *Authorizer) Visible(_ context.Context, runID string, t Target) bool {
	live, _, ok := a.checkRun(runID, a.runs.Now())
	return ok && len(live.Match(string(t.Kind), t.Server, t.Name)) > 0
}

func (d Decision) deny(r Reason, msg string) Decision {
	d.Effect, d.Reason, d.Message = Deny, r, msg
	return d
}

// calls recycles condition inputs, which no CEL value outlives.
var calls = sync.Pool{New: func() any { return new(policy.Call) }}

func newCall(live *runs.Live, req *Request) *policy.Call {
	sp := live.Sponsor()
	c := calls.Get().(*policy.Call)
	*c = policy.Call{
		Tool: policy.Tool{Kind: string(req.Target.Kind), Server: req.Target.Server,
			Name: req.Target.Name, Annotations: req.Target.Annotations},
		Arguments: req.Arguments,
		Run: policy.Run{ID: live.ID(), Agent: live.Agent(), SPIFFEID: live.SPIFFEID(),
			Depth: int64(live.Depth()), Start: live.Created(), Expiry: live.Expiry(), Purpose: live.Purpose()},
		Sponsor: policy.Sponsor{ID: sp.Subject, Issuer: sp.Issuer, Email: sp.Email, Groups: sp.Groups},
		Chain:   live.Chain(),
		Now:     req.Now,
	}
	return c
}
