package policytest

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/agentauth/agentauth/agentauth/authz"
	"github.com/agentauth/agentauth/agentauth/policy"
	"github.com/agentauth/agentauth/agentauth/runs"
	"github.com/agentauth/agentauth/agentauth/store"
)

// TrustDomain is the trust domain test runs are minted in.
const TrustDomain = "policy.test"

// Result counts the cases run.
type Result struct {
	Passed, Failed int
}

// Run runs every case of the files against the policy, writing one line
// per case to out. The error is for a file that cannot be read, not for
// failed cases.
func Run(ctx context.Context, p *policy.Policy, files []string, out io.Writer) (Result, error) {
	var res Result
	tmp, err := os.MkdirTemp("", "agentauth-policytest-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(tmp)
	for _, path := range files {
		f, err := ReadFile(path)
		if err != nil {
			return res, err
		}
		for _, c := range f.Tests {
			db := filepath.Join(tmp, fmt.Sprintf("case-%d.db", res.Passed+res.Failed))
			if msg := runCase(ctx, p, db, &c); msg != "" {
				res.Failed++
				fmt.Fprintf(out, "FAIL %s: %s\n     %s\n", filepath.Base(path), c.Name, msg)
			} else {
				res.Passed++
				fmt.Fprintf(out, "ok   %s: %s\n", filepath.Base(path), c.Name)
			}
		}
	}
	return res, nil
}

// runCase returns "" when the case passes, otherwise what went wrong.
func runCase(ctx context.Context, p *policy.Policy, db string, c *Case) string {
	st, err := store.Open(ctx, db)
	if err != nil {
		return "open store: " + err.Error()
	}
	defer st.Close()
	clock := time.Now()
	m, err := runs.Open(ctx, runs.Options{TrustDomain: TrustDomain, Store: st, Policy: p,
		Now: func() time.Time { return clock }})
	if err != nil {
		return "open runs: " + err.Error()
	}
	leaf, err := startChain(ctx, m, c)
	if err == nil && (c.Revoke || c.Offboard) {
		err = stopChain(ctx, m, c, leaf)
	}
	if err == nil && c.Advance != "" {
		var d time.Duration
		if d, err = time.ParseDuration(c.Advance); err == nil {
			clock = clock.Add(d)
		}
	}
	if err != nil {
		return checkError(c, err)
	}
	d, err := call(ctx, m, c, leaf.ID)
	if err != nil {
		return checkError(c, err)
	}
	if c.ExpectError != "" {
		return fmt.Sprintf("expected an error containing %q, got decision %s/%s", c.ExpectError, d.Effect, d.Reason)
	}
	return compare(c.Expect, d)
}

func checkError(c *Case, err error) string {
	if c.ExpectError == "" {
		return "unexpected error: " + err.Error()
	}
	if !strings.Contains(err.Error(), c.ExpectError) {
		return fmt.Sprintf("error %q does not contain %q", err, c.ExpectError)
	}
	return ""
}

func compare(want Expect, d authz.Decision) string {
	var diffs []string
	if string(d.Effect) != want.Effect {
		diffs = append(diffs, fmt.Sprintf("effect %s (reason %s), want %s", d.Effect, d.Reason, want.Effect))
	}
	if want.Reason != "" && string(d.Reason) != want.Reason {
		diffs = append(diffs, fmt.Sprintf("reason %s, want %s", d.Reason, want.Reason))
	}
	if want.Grant != "" && d.GrantID != want.Grant {
		diffs = append(diffs, fmt.Sprintf("grant %q, want %q", d.GrantID, want.Grant))
	}
	if d.BreakGlass != want.BreakGlass {
		diffs = append(diffs, fmt.Sprintf("break_glass %v, want %v", d.BreakGlass, want.BreakGlass))
	}
	if len(diffs) == 0 {
		return ""
	}
	return strings.Join(diffs, "; ") + " (message: " + d.Message + ")"
}

func (h Human) sponsor() runs.Sponsor {
	iss := h.Issuer
	if iss == "" {
		iss = runs.LocalIssuer
	}
	return runs.Sponsor{Issuer: iss, Subject: h.Subject, Email: h.Email, Groups: h.Groups, Claims: h.Claims}
}

func startChain(ctx context.Context, m *runs.Manager, c *Case) (runs.Run, error) {
	sp := c.Sponsor.sponsor()
	if c.Break != nil {
		ttl, err := duration(c.Break.TTL)
		if err != nil {
			return runs.Run{}, err
		}
		return m.BreakGlass(ctx, runs.BreakGlassRequest{Sponsor: sp, Grant: c.Break.Grant,
			Agent: c.Break.Agent, Reason: c.Break.Reason, TTL: ttl})
	}
	if len(c.Runs) == 0 {
		return runs.Run{}, fmt.Errorf("test %q lists no runs and no break_glass", c.Name)
	}
	var leaf runs.Run
	for i, rs := range c.Runs {
		ttl, err := duration(rs.TTL)
		if err != nil {
			return runs.Run{}, err
		}
		if i == 0 {
			leaf, err = m.StartRun(ctx, runs.StartRequest{Sponsor: sp, Agent: rs.Agent, Grants: rs.Grants,
				Purpose: rs.Purpose, TTL: ttl, Budgets: rs.Budgets})
		} else {
			leaf, err = m.Delegate(ctx, runs.DelegateRequest{ParentID: leaf.ID, Agent: rs.Agent,
				Grants: rs.Grants, Purpose: rs.Purpose, TTL: ttl, Budgets: rs.Budgets})
		}
		if err != nil {
			return runs.Run{}, err
		}
	}
	return leaf, nil
}

func stopChain(ctx context.Context, m *runs.Manager, c *Case, leaf runs.Run) error {
	admin := runs.Sponsor{Issuer: runs.LocalIssuer, Subject: "policy-test-admin"}
	chain, err := m.GetChain(ctx, leaf.ID)
	if err != nil {
		return err
	}
	if c.Revoke {
		_, err = m.Revoke(ctx, admin, chain[0].ID, "policy test")
		return err
	}
	_, err = m.DeactivateSponsor(ctx, admin, chain[0].Sponsor.Key(), "policy test")
	return err
}

func call(ctx context.Context, m *runs.Manager, c *Case, runID string) (authz.Decision, error) {
	args, err := c.Call.argumentsJSON()
	if err != nil {
		return authz.Decision{}, err
	}
	kind := authz.Kind(c.Call.Kind)
	if kind == "" {
		kind = authz.KindTool
	}
	req := authz.Request{RunID: runID, Arguments: args,
		Target: authz.Target{Kind: kind, Server: c.Call.Server, Name: c.Call.Name, Annotations: c.Call.Annotations}}
	if c.Via != "" {
		req.Via = authz.ToolServerSPIFFEID(TrustDomain, c.Via)
	}
	a := authz.New(m)
	d := a.Authorize(ctx, req)
	for i := 0; i < c.Repeat; i++ {
		d = a.Authorize(ctx, req)
	}
	if c.Approval == nil {
		return d, nil
	}
	return approveAndRetry(ctx, m, a, c, req, d)
}

func approveAndRetry(ctx context.Context, m *runs.Manager, a *authz.Authorizer, c *Case,
	req authz.Request, d authz.Decision) (authz.Decision, error) {
	if d.Effect != authz.ApprovalRequired {
		return d, fmt.Errorf("first call was %s/%s, not approval_required", d.Effect, d.Reason)
	}
	by := c.Approval.By.sponsor()
	var err error
	switch c.Approval.Decision {
	case "approve":
		_, err = m.Approve(ctx, by, d.ApprovalID, "policy test")
	case "deny":
		_, err = m.Deny(ctx, by, d.ApprovalID, "policy test")
	default:
		err = fmt.Errorf("approval.decision %q is neither approve nor deny", c.Approval.Decision)
	}
	if err != nil {
		return d, err
	}
	req.ApprovalID = d.ApprovalID
	if c.Approval.ArgumentsJSON != "" {
		req.Arguments = []byte(c.Approval.ArgumentsJSON)
	}
	d = a.Authorize(ctx, req)
	if c.Approval.UseTwice {
		d = a.Authorize(ctx, req)
	}
	return d, nil
}
