package authz_test

import (
	"context"
	"testing"
	"time"

	"github.com/agentauth/agentauth/agentauth/authz"
	"github.com/agentauth/agentauth/agentauth/runs"
)

const reasonPolicy = `
agents:
  lead:
    grants: [read, write, sum, docs, glass]
    max_delegation_depth: 2
    max_fan_out: 3
  helper:
    grants: [read, sum, read-any]
roles:
  steward: {groups: [stewards]}
grants:
  read:
    tools: [{server: fs, names: [read_file]}]
    condition: path_within(args.path, "/data")
    budget: 3
  write:
    tools: [{server: fs, names: [write_file]}]
    approval: {approver: steward}
  read-any:
    tools: [{server: fs, names: [read_file]}]
    condition: path_within(args.path, "/")
  sum:
    tools: [{server: calc, names: [add]}]
    condition: args.a + args.b < 100
  docs:
    resources: [{server: fs, uri_prefixes: ["file:///data/"]}]
  glass:
    tools: [{server: fs, names: [write_file, read_file]}]
    break_glass: {sponsors: {groups: [oncall]}, agents: [lead], max_lifetime: 15m}
entitlements:
  - sponsors: {issuer: local, groups: [eng]}
    agents: [lead, helper]
    grants: [read, write, sum, docs, read-any]
tool_servers:
  relay:
    grants: [read]
`

var alice = runs.Sponsor{Issuer: "local", Subject: "alice", Groups: []string{"eng"}}

func (f *fixture) start(t *testing.T, grants ...string) runs.Run {
	t.Helper()
	r, err := f.m.StartRun(context.Background(), runs.StartRequest{Sponsor: alice, Agent: "lead",
		Grants: grants, TTL: 30 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (f *fixture) call(runID, server, name, args string) authz.Decision {
	return f.a.Authorize(context.Background(), authz.Request{RunID: runID, Now: f.clock.t,
		Target: authz.Target{Kind: authz.KindTool, Server: server, Name: name}, Arguments: []byte(args)})
}

func TestAuthorizeReasons(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		decide func(t *testing.T, f *fixture) authz.Decision
		effect authz.Effect
		reason authz.Reason
	}{
		{"granted", func(t *testing.T, f *fixture) authz.Decision {
			return f.call(f.start(t, "read").ID, "fs", "read_file", `{"path":"/data/a"}`)
		}, authz.Allow, authz.ReasonGranted},
		{"run unknown", func(t *testing.T, f *fixture) authz.Decision {
			return f.call("01HZZZZZZZZZZZZZZZZZZZZZZZ", "fs", "read_file", `{}`)
		}, authz.Deny, authz.ReasonRunUnknown},
		{"run expired", func(t *testing.T, f *fixture) authz.Decision {
			r := f.start(t, "read")
			f.clock.t = r.Expiry
			return f.call(r.ID, "fs", "read_file", `{"path":"/data/a"}`)
		}, authz.Deny, authz.ReasonRunExpired},
		{"run revoked", func(t *testing.T, f *fixture) authz.Decision {
			r := f.start(t, "read")
			if _, err := f.m.Revoke(ctx, alice, r.ID, "test"); err != nil {
				t.Fatal(err)
			}
			return f.call(r.ID, "fs", "read_file", `{"path":"/data/a"}`)
		}, authz.Deny, authz.ReasonRunRevoked},
		{"tool not granted", func(t *testing.T, f *fixture) authz.Decision {
			return f.call(f.start(t, "read").ID, "fs", "delete_file", `{"path":"/data/a"}`)
		}, authz.Deny, authz.ReasonToolNotGranted},
		{"server differs", func(t *testing.T, f *fixture) authz.Decision {
			return f.call(f.start(t, "read").ID, "fs2", "read_file", `{"path":"/data/a"}`)
		}, authz.Deny, authz.ReasonToolNotGranted},
		{"condition false", func(t *testing.T, f *fixture) authz.Decision {
			return f.call(f.start(t, "read").ID, "fs", "read_file", `{"path":"/data/../etc/passwd"}`)
		}, authz.Deny, authz.ReasonConditionFalse},
		{"policy error on missing argument", func(t *testing.T, f *fixture) authz.Decision {
			return f.call(f.start(t, "read").ID, "fs", "read_file", `{}`)
		}, authz.Deny, authz.ReasonPolicyError},
		{"policy error on malformed arguments", func(t *testing.T, f *fixture) authz.Decision {
			return f.call(f.start(t, "read").ID, "fs", "read_file", `{"path":"/data/a","path":"/etc"}`)
		}, authz.Deny, authz.ReasonPolicyError},
		{"policy error on integer overflow", func(t *testing.T, f *fixture) authz.Decision {
			return f.call(f.start(t, "sum").ID, "calc", "add", `{"a":9223372036854775807,"b":1}`)
		}, authz.Deny, authz.ReasonPolicyError},
		{"budget exhausted", func(t *testing.T, f *fixture) authz.Decision {
			id := f.start(t, "read").ID
			for range 3 {
				if d := f.call(id, "fs", "read_file", `{"path":"/data/a"}`); !d.Allowed() {
					t.Fatalf("call before budget ran out: %s", d.Reason)
				}
			}
			return f.call(id, "fs", "read_file", `{"path":"/data/a"}`)
		}, authz.Deny, authz.ReasonBudgetExhausted},
		{"approval required", func(t *testing.T, f *fixture) authz.Decision {
			return f.call(f.start(t, "write").ID, "fs", "write_file", `{"path":"/data/a"}`)
		}, authz.ApprovalRequired, authz.ReasonApprovalRequired},
		{"approved", func(t *testing.T, f *fixture) authz.Decision {
			return f.approveAndCall(t, "approve")
		}, authz.Allow, authz.ReasonApproved},
		{"approval denied", func(t *testing.T, f *fixture) authz.Decision {
			return f.approveAndCall(t, "deny")
		}, authz.Deny, authz.ReasonApprovalDenied},
		{"unknown approval id", func(t *testing.T, f *fixture) authz.Decision {
			r := f.start(t, "write")
			return f.a.Authorize(ctx, authz.Request{RunID: r.ID, Now: f.clock.t, ApprovalID: "nope",
				Target: authz.Target{Kind: authz.KindTool, Server: "fs", Name: "write_file"}})
		}, authz.Deny, authz.ReasonApprovalDenied},
		{"break glass", func(t *testing.T, f *fixture) authz.Decision {
			r, err := f.m.BreakGlass(ctx, runs.BreakGlassRequest{Sponsor: runs.Sponsor{Issuer: "local",
				Subject: "dave", Groups: []string{"oncall"}}, Grant: "glass", Agent: "lead", Reason: "incident"})
			if err != nil {
				t.Fatal(err)
			}
			return f.call(r.ID, "fs", "write_file", `{}`)
		}, authz.Allow, authz.ReasonBreakGlass},
		{"sponsor inactive", func(t *testing.T, f *fixture) authz.Decision {
			r := f.start(t, "read")
			// Mark the sponsor inactive in the store only, then reopen, so
			// the run itself is still active.
			if err := f.st.SetSponsorActive(ctx, alice.Key(), false, f.clock.t); err != nil {
				t.Fatal(err)
			}
			f.reopen(t)
			return f.call(r.ID, "fs", "read_file", `{"path":"/data/a"}`)
		}, authz.Deny, authz.ReasonSponsorInactive},
		{"chain too deep after reload", func(t *testing.T, f *fixture) authz.Decision {
			r := f.start(t, "read")
			child, err := f.m.Delegate(ctx, runs.DelegateRequest{ParentID: r.ID, Agent: "helper", Grants: []string{"read"}})
			if err != nil {
				t.Fatal(err)
			}
			f.m.SetPolicy(mustParse(t, replace(reasonPolicy, "max_delegation_depth: 2", "max_delegation_depth: 0")))
			return f.call(child.ID, "fs", "read_file", `{"path":"/data/a"}`)
		}, authz.Deny, authz.ReasonChainTooDeep},
		{"chained call allowed", func(t *testing.T, f *fixture) authz.Decision {
			return f.via(f.start(t, "read").ID, "spiffe://example.test/tools/relay", "read_file")
		}, authz.Allow, authz.ReasonGranted},
		{"chained call outside the tool server's grants", func(t *testing.T, f *fixture) authz.Decision {
			return f.via(f.start(t, "write").ID, "spiffe://example.test/tools/relay", "write_file")
		}, authz.Deny, authz.ReasonToolNotGranted},
		{"chained call from another trust domain", func(t *testing.T, f *fixture) authz.Decision {
			return f.via(f.start(t, "read").ID, "spiffe://evil.test/tools/relay", "read_file")
		}, authz.Deny, authz.ReasonUnauthenticated},
		{"unknown target kind", func(t *testing.T, f *fixture) authz.Decision {
			return f.a.Authorize(ctx, authz.Request{RunID: f.start(t, "read").ID, Now: f.clock.t,
				Target: authz.Target{Kind: "sampling", Server: "fs", Name: "read_file"}})
		}, authz.Deny, authz.ReasonMalformedRequest},
		{"resource by prefix", func(t *testing.T, f *fixture) authz.Decision {
			return f.a.Authorize(ctx, authz.Request{RunID: f.start(t, "docs").ID, Now: f.clock.t,
				Target: authz.Target{Kind: authz.KindResource, Server: "fs", Name: "file:///data/x.txt"}})
		}, authz.Allow, authz.ReasonGranted},
		{"resource outside prefix", func(t *testing.T, f *fixture) authz.Decision {
			return f.a.Authorize(ctx, authz.Request{RunID: f.start(t, "docs").ID, Now: f.clock.t,
				Target: authz.Target{Kind: authz.KindResource, Server: "fs", Name: "file:///etc/x.txt"}})
		}, authz.Deny, authz.ReasonToolNotGranted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, mustParse(t, reasonPolicy))
			d := tt.decide(t, f)
			if d.Effect != tt.effect {
				t.Errorf("effect = %s, want %s (reason %s: %s)", d.Effect, tt.effect, d.Reason, d.Message)
			}
			if d.Reason != tt.reason {
				t.Errorf("reason = %s, want %s (%s)", d.Reason, tt.reason, d.Message)
			}
			if d.Effect == authz.Allow && d.GrantID == "" {
				t.Error("allowed decision names no grant")
			}
		})
	}
}

func (f *fixture) via(runID, via, tool string) authz.Decision {
	return f.a.Authorize(context.Background(), authz.Request{RunID: runID, Now: f.clock.t, Via: via,
		Target: authz.Target{Kind: authz.KindTool, Server: "fs", Name: tool}, Arguments: []byte(`{"path":"/data/a"}`)})
}

func (f *fixture) approveAndCall(t *testing.T, decision string) authz.Decision {
	t.Helper()
	ctx := context.Background()
	r := f.start(t, "write")
	d := f.call(r.ID, "fs", "write_file", `{"path":"/data/a"}`)
	if d.Effect != authz.ApprovalRequired || d.ApprovalID == "" {
		t.Fatalf("first call = %s/%s, want approval_required with an id", d.Effect, d.Reason)
	}
	steward := runs.Sponsor{Issuer: "local", Subject: "carol", Groups: []string{"stewards"}}
	var err error
	if decision == "approve" {
		_, err = f.m.Approve(ctx, steward, d.ApprovalID, "ok")
	} else {
		_, err = f.m.Deny(ctx, steward, d.ApprovalID, "no")
	}
	if err != nil {
		t.Fatal(err)
	}
	return f.a.Authorize(ctx, authz.Request{RunID: r.ID, Now: f.clock.t, ApprovalID: d.ApprovalID,
		Target: authz.Target{Kind: authz.KindTool, Server: "fs", Name: "write_file"}, Arguments: []byte(`{"path":"/data/a"}`)})
}

// reopen replaces the manager with one loaded from the same store, as
// after a restart.
func (f *fixture) reopen(t *testing.T) {
	t.Helper()
	if err := f.m.FlushBudgets(context.Background()); err != nil {
		t.Fatal(err)
	}
	m, err := runs.Open(context.Background(), runs.Options{TrustDomain: trustDomain, Store: f.st,
		Policy: f.m.Policy(), Now: f.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	f.m, f.a = m, authz.New(m)
}

func replace(s, old, new string) string {
	out := []byte{}
	for i := 0; i < len(s); {
		if len(s)-i >= len(old) && s[i:i+len(old)] == old {
			out = append(out, new...)
			i += len(old)
			continue
		}
		out = append(out, s[i])
		i++
	}
	return string(out)
}

func TestDecisionCarriesChainAndSponsor(t *testing.T) {
	f := newFixture(t, mustParse(t, reasonPolicy))
	r := f.start(t, "read")
	child, err := f.m.Delegate(context.Background(), runs.DelegateRequest{ParentID: r.ID, Agent: "helper",
		Grants: []string{"read"}})
	if err != nil {
		t.Fatal(err)
	}
	d := f.via(child.ID, "spiffe://example.test/tools/relay", "read_file")
	if len(d.Chain) != 3 {
		t.Fatalf("chain has %d hops, want 3: %+v", len(d.Chain), d.Chain)
	}
	if d.Chain[0].RunID != r.ID || d.Chain[1].RunID != child.ID || d.Chain[2].SPIFFEID != "spiffe://example.test/tools/relay" {
		t.Errorf("chain = %+v", d.Chain)
	}
	if d.SponsorSubject != "alice" || d.SponsorIssuer != "local" {
		t.Errorf("sponsor = %s/%s, want local/alice", d.SponsorIssuer, d.SponsorSubject)
	}
	again := f.call(child.ID, "fs", "read_file", `{"path":"/data/a"}`)
	if len(again.Chain) != 2 {
		t.Errorf("direct call chain has %d hops, want 2", len(again.Chain))
	}
}

func TestVisibleFiltersWithoutSpending(t *testing.T) {
	f := newFixture(t, mustParse(t, reasonPolicy))
	r := f.start(t, "read", "write")
	ctx := context.Background()
	tool := func(name string) authz.Target { return authz.Target{Kind: authz.KindTool, Server: "fs", Name: name} }
	for range 10 {
		if !f.a.Visible(ctx, r.ID, tool("read_file")) {
			t.Fatal("read_file is not visible")
		}
	}
	if !f.a.Visible(ctx, r.ID, tool("write_file")) {
		t.Error("write_file, which needs approval, is not visible")
	}
	if f.a.Visible(ctx, r.ID, tool("delete_file")) {
		t.Error("delete_file is visible")
	}
	if d := f.call(r.ID, "fs", "read_file", `{"path":"/data/a"}`); !d.Allowed() {
		t.Errorf("call after Visible = %s; Visible spent budget", d.Reason)
	}
	list, err := f.m.ListApprovals(ctx, runs.ApprovalFilter{RunID: r.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 0 {
		t.Errorf("Visible created %d approvals", len(list))
	}
	if _, err := f.m.Revoke(ctx, alice, r.ID, "done"); err != nil {
		t.Fatal(err)
	}
	if f.a.Visible(ctx, r.ID, tool("read_file")) {
		t.Error("revoked run still sees read_file")
	}
}

func TestChildCannotLoosenCondition(t *testing.T) {
	f := newFixture(t, mustParse(t, reasonPolicy))
	ctx := context.Background()
	root := f.start(t, "read")
	child, err := f.m.Delegate(ctx, runs.DelegateRequest{ParentID: root.ID, Agent: "helper",
		Grants: []string{"read-any"}})
	if err != nil {
		t.Fatalf("narrower grant under a covering parent grant: %v", err)
	}
	d := f.call(child.ID, "fs", "read_file", `{"path":"/etc/passwd"}`)
	if d.Reason != authz.ReasonConditionFalse {
		t.Errorf("child call outside the parent's condition = %s, want condition_false", d.Reason)
	}
	for i := range 3 {
		d = f.call(child.ID, "fs", "read_file", `{"path":"/data/a"}`)
		if !d.Allowed() || d.GrantID != "read-any" {
			t.Fatalf("call %d inside both conditions = %s/%s grant %q", i, d.Effect, d.Reason, d.GrantID)
		}
	}
	d = f.call(child.ID, "fs", "read_file", `{"path":"/data/a"}`)
	if d.Reason != authz.ReasonBudgetExhausted {
		t.Errorf("fourth call = %s, want budget_exhausted from the parent's grant budget of 3", d.Reason)
	}
	if d = f.call(root.ID, "fs", "read_file", `{"path":"/data/a"}`); d.Reason != authz.ReasonBudgetExhausted {
		t.Errorf("parent call after the child spent its budget = %s, want budget_exhausted", d.Reason)
	}
}
