package runs_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentauth/agentauth/agentauth/policy"
	"github.com/agentauth/agentauth/agentauth/runs"
	"github.com/agentauth/agentauth/agentauth/store"
)

const testPolicy = `
agents:
  lead:
    grants: [read, write, glass]
    max_delegation_depth: 2
    max_fan_out: 2
  helper:
    grants: [read, write]
    max_delegation_depth: 1
    max_fan_out: 1
roles:
  steward: {groups: [stewards]}
grants:
  read:
    tools: [{server: fs, names: [read_file]}]
    budget: 10
  write:
    tools: [{server: fs, names: [write_file]}]
    max_lifetime: 1h
    approval: {approver: steward}
  glass:
    tools: [{server: fs, names: [write_file]}]
    break_glass: {sponsors: {groups: [oncall]}, agents: [lead], max_lifetime: 15m}
entitlements:
  - sponsors: {issuer: local, groups: [eng]}
    agents: [lead, helper]
    grants: [read, write]
`

var (
	alice = runs.Sponsor{Issuer: "local", Subject: "alice", Groups: []string{"eng"}}
	carol = runs.Sponsor{Issuer: "local", Subject: "carol", Groups: []string{"stewards"}}
	dave  = runs.Sponsor{Issuer: "local", Subject: "dave", Groups: []string{"oncall"}}
	admin = runs.Sponsor{Issuer: "local", Subject: "root"}
)

type events struct {
	mu   sync.Mutex
	list []runs.Event
}

func (e *events) Record(_ context.Context, ev runs.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, ev)
}

func (e *events) has(t runs.EventType) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.ContainsFunc(e.list, func(ev runs.Event) bool { return ev.Type == t })
}

type env struct {
	m      *runs.Manager
	st     *store.SQLite
	path   string
	now    time.Time
	events *events
	pol    *policy.Policy
}

func newEnv(t *testing.T) *env { return newEnvTB(t) }

func newEnvTB(t testing.TB) *env {
	t.Helper()
	p, err := policy.Parse("test.yaml", []byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{path: filepath.Join(t.TempDir(), "agentauth.db"), now: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC),
		events: &events{}, pol: p}
	e.open(t)
	return e
}

func (e *env) open(t testing.TB) {
	t.Helper()
	st, err := store.Open(context.Background(), e.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m, err := runs.Open(context.Background(), runs.Options{TrustDomain: "example.test", Store: st,
		Policy: e.pol, Recorder: e.events, Now: func() time.Time { return e.now }})
	if err != nil {
		t.Fatal(err)
	}
	e.m, e.st = m, st
}

// restart closes the store and opens everything again from the file.
func (e *env) restart(t *testing.T) {
	t.Helper()
	if err := e.m.FlushBudgets(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.st.Close(); err != nil {
		t.Fatal(err)
	}
	e.open(t)
}

func (e *env) start(t *testing.T, grants ...string) runs.Run {
	t.Helper()
	r, err := e.m.StartRun(context.Background(), runs.StartRequest{Sponsor: alice, Agent: "lead",
		Grants: grants, Purpose: "test", TTL: 30 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (e *env) delegate(t *testing.T, parent string, agent string, grants ...string) runs.Run {
	t.Helper()
	r, err := e.m.Delegate(context.Background(), runs.DelegateRequest{ParentID: parent, Agent: agent, Grants: grants})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestStartRunIdentity(t *testing.T) {
	e := newEnv(t)
	r := e.start(t, "read")
	if len(r.ID) != 26 {
		t.Errorf("run id %q is not a ULID", r.ID)
	}
	want := "spiffe://example.test/agents/lead/runs/" + r.ID
	if r.SPIFFEID != want {
		t.Errorf("SPIFFE ID = %s, want %s", r.SPIFFEID, want)
	}
	if !r.Expiry.Equal(e.now.Add(30 * time.Minute)) {
		t.Errorf("expiry = %v", r.Expiry)
	}
	if l, ok := e.m.LookupSPIFFE(want); !ok || l.ID() != r.ID {
		t.Error("run not found by SPIFFE ID")
	}
	if !e.events.has(runs.EventRunStarted) {
		t.Error("no run_started event")
	}
}

func TestStartRunRejections(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tests := []struct {
		name string
		req  runs.StartRequest
		is   error
		text string
	}{
		{"not entitled", runs.StartRequest{Sponsor: runs.Sponsor{Issuer: "local", Subject: "bob"},
			Agent: "lead", Grants: []string{"read"}}, runs.ErrNotEntitled,
			`grant "read" is not in the entitlements of sponsor bob for agent lead; ask an admin`},
		{"other issuer", runs.StartRequest{Sponsor: runs.Sponsor{Issuer: "https://idp.example", Subject: "alice",
			Groups: []string{"eng"}}, Agent: "lead", Grants: []string{"read"}}, runs.ErrNotEntitled, "entitlements"},
		{"break-glass grant", runs.StartRequest{Sponsor: alice, Agent: "lead", Grants: []string{"glass"}},
			runs.ErrNotEntitled, "take it with break-glass"},
		{"unknown grant", runs.StartRequest{Sponsor: alice, Agent: "lead", Grants: []string{"nope"}},
			runs.ErrNotFound, `grant "nope" is not declared`},
		{"unknown agent", runs.StartRequest{Sponsor: alice, Agent: "ghost", Grants: []string{"read"}},
			runs.ErrNotFound, `agent "ghost"`},
		{"over grant lifetime", runs.StartRequest{Sponsor: alice, Agent: "lead", Grants: []string{"write"},
			TTL: 2 * time.Hour}, runs.ErrInvalid, `lifetime cap of grant "write"`},
		{"over max ttl", runs.StartRequest{Sponsor: alice, Agent: "lead", Grants: []string{"read"},
			TTL: 48 * time.Hour}, runs.ErrInvalid, "over the maximum"},
		{"duplicate grant", runs.StartRequest{Sponsor: alice, Agent: "lead", Grants: []string{"read", "read"}},
			runs.ErrInvalid, "twice"},
		{"no sponsor", runs.StartRequest{Agent: "lead", Grants: []string{"read"}}, runs.ErrInvalid, "sponsor"},
		{"workload sponsor", runs.StartRequest{Sponsor: runs.Sponsor{Issuer: "local",
			Subject: "spiffe://example.test/agents/lead/runs/x", Groups: []string{"eng"}}, Agent: "lead",
			Grants: []string{"read"}}, runs.ErrForbidden, "only a human"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.m.StartRun(ctx, tt.req)
			if !errors.Is(err, tt.is) {
				t.Fatalf("error = %v, want %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.text) {
				t.Errorf("error %q does not contain %q", err, tt.text)
			}
		})
	}
}

func TestDelegationNarrows(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	root := e.start(t, "read")
	tests := []struct {
		name string
		req  runs.DelegateRequest
		text string
	}{
		{"gain a grant", runs.DelegateRequest{ParentID: root.ID, Agent: "helper", Grants: []string{"write"}},
			`grant "write" covers tool fs/write_file, which parent run`},
		{"outlive the parent", runs.DelegateRequest{ParentID: root.ID, Agent: "helper", Grants: []string{"read"},
			TTL: time.Hour}, "a child run cannot outlive its parent"},
		{"agent may not hold", runs.DelegateRequest{ParentID: root.ID, Agent: "lead", Grants: []string{"glass"}},
			`grant "glass" covers tool fs/write_file, which parent run`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.m.Delegate(ctx, tt.req)
			if !errors.Is(err, runs.ErrEscalation) {
				t.Fatalf("error = %v, want escalation", err)
			}
			if !strings.Contains(err.Error(), tt.text) {
				t.Errorf("error %q does not contain %q", err, tt.text)
			}
		})
	}
	if !e.events.has(runs.EventEscalationRejected) {
		t.Error("escalation not reported to the recorder")
	}
}

func TestDelegationInheritsLimits(t *testing.T) {
	e := newEnv(t)
	root := e.start(t, "read")
	l, _ := e.m.Lookup(root.ID)
	for range 7 {
		if !l.Consume("read") {
			t.Fatal("root budget ran out early")
		}
	}
	child := e.delegate(t, root.ID, "helper", "read")
	if child.Budgets["read"] != 3 {
		t.Errorf("child budget = %d, want the parent's 3 left", child.Budgets["read"])
	}
	if child.Expiry.After(root.Expiry) {
		t.Errorf("child expires %v after parent %v", child.Expiry, root.Expiry)
	}
	if child.Depth != 1 || child.ParentID != root.ID {
		t.Errorf("child depth %d parent %s", child.Depth, child.ParentID)
	}
	cl, _ := e.m.Lookup(child.ID)
	for range 3 {
		if !cl.Consume("read") {
			t.Fatal("child budget ran out early")
		}
	}
	if cl.Consume("read") {
		t.Error("child spent more than the parent had left")
	}
	if l.Consume("read") {
		t.Error("child's calls were not counted against the parent")
	}
}

func TestDelegationShape(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	root := e.start(t, "read")
	child := e.delegate(t, root.ID, "helper", "read")
	grandchild := e.delegate(t, child.ID, "helper", "read")
	_, err := e.m.Delegate(ctx, runs.DelegateRequest{ParentID: grandchild.ID, Agent: "helper", Grants: []string{"read"}})
	if !errors.Is(err, runs.ErrEscalation) || !strings.Contains(err.Error(), "max_delegation_depth") {
		t.Errorf("depth 3 error = %v, want max_delegation_depth", err)
	}
	_, err = e.m.Delegate(ctx, runs.DelegateRequest{ParentID: child.ID, Agent: "helper", Grants: []string{"read"}})
	if !errors.Is(err, runs.ErrEscalation) || !strings.Contains(err.Error(), "max_fan_out") {
		t.Errorf("second child of helper error = %v, want max_fan_out", err)
	}
	e.delegate(t, root.ID, "helper", "read")
	_, err = e.m.Delegate(ctx, runs.DelegateRequest{ParentID: root.ID, Agent: "helper", Grants: []string{"read"}})
	if !errors.Is(err, runs.ErrEscalation) {
		t.Errorf("third child of lead error = %v, want fan-out escalation", err)
	}
}

func TestRevokeCascades(t *testing.T) {
	e := newEnv(t)
	root := e.start(t, "read")
	child := e.delegate(t, root.ID, "helper", "read")
	grandchild := e.delegate(t, child.ID, "helper", "read")
	other := e.start(t, "read")
	ids, err := e.m.Revoke(context.Background(), admin, child.ID, "compromised")
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 2 {
		t.Errorf("revoked %v, want child and grandchild", ids)
	}
	for id, want := range map[string]bool{root.ID: false, child.ID: true, grandchild.ID: true, other.ID: false} {
		l, _ := e.m.Lookup(id)
		if l.Revoked() != want {
			t.Errorf("run %s revoked = %v, want %v", id, l.Revoked(), want)
		}
	}
	if _, err := e.m.Delegate(context.Background(), runs.DelegateRequest{ParentID: grandchild.ID,
		Agent: "helper", Grants: []string{"read"}}); !errors.Is(err, runs.ErrInactive) {
		t.Errorf("delegate from revoked run: %v", err)
	}
	e.restart(t)
	for _, id := range []string{child.ID, grandchild.ID} {
		r, err := e.m.GetRun(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != runs.StatusRevoked || r.StatusReason != "compromised" {
			t.Errorf("after restart run %s is %s (%q), want revoked", id, r.Status, r.StatusReason)
		}
		if l, ok := e.m.Lookup(id); !ok || !l.Revoked() {
			t.Errorf("after restart run %s is live in memory", id)
		}
	}
}

func TestDeactivateSponsor(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r1 := e.start(t, "read")
	r2 := e.delegate(t, r1.ID, "helper", "read")
	ids, err := e.m.DeactivateSponsor(ctx, admin, alice.Key(), "left the company")
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 2 {
		t.Errorf("stopped %v, want both runs", ids)
	}
	if _, err := e.m.StartRun(ctx, runs.StartRequest{Sponsor: alice, Agent: "lead", Grants: []string{"read"}}); !errors.Is(err, runs.ErrInactive) {
		t.Errorf("start by deactivated sponsor: %v", err)
	}
	e.restart(t)
	if e.m.SponsorActive(alice.Key()) {
		t.Error("sponsor active again after restart")
	}
	l, _ := e.m.Lookup(r2.ID)
	if !l.Revoked() {
		t.Error("run resurrected after restart")
	}
	if err := e.m.ReactivateSponsor(ctx, admin, alice.Key()); err != nil {
		t.Fatal(err)
	}
	if l, _ := e.m.Lookup(r1.ID); !l.Revoked() {
		t.Error("reactivation resurrected a run")
	}
	e.start(t, "read")
}

func TestBreakGlass(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r, err := e.m.BreakGlass(ctx, runs.BreakGlassRequest{Sponsor: dave, Grant: "glass", Agent: "lead",
		Reason: "prod outage", TTL: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if !r.BreakGlass || r.BreakGlassReason != "prod outage" || r.Sponsor.Subject != "dave" {
		t.Errorf("run = %+v", r)
	}
	if _, err := e.m.Delegate(ctx, runs.DelegateRequest{ParentID: r.ID, Agent: "helper", Grants: []string{"glass"}}); !errors.Is(err, runs.ErrEscalation) {
		t.Errorf("break-glass delegation error = %v", err)
	}
	for _, tt := range []struct {
		name string
		req  runs.BreakGlassRequest
		is   error
	}{
		{"no reason", runs.BreakGlassRequest{Sponsor: dave, Grant: "glass", Agent: "lead"}, runs.ErrInvalid},
		{"agent breaks glass", runs.BreakGlassRequest{Sponsor: runs.Sponsor{Issuer: "spiffe://example.test",
			Subject: "spiffe://example.test/agents/lead/runs/x", Groups: []string{"oncall"}}, Grant: "glass",
			Agent: "lead", Reason: "x"}, runs.ErrForbidden},
		{"too long", runs.BreakGlassRequest{Sponsor: dave, Grant: "glass", Agent: "lead", Reason: "x", TTL: time.Hour}, runs.ErrInvalid},
		{"not on call", runs.BreakGlassRequest{Sponsor: alice, Grant: "glass", Agent: "lead", Reason: "x"}, runs.ErrNotEntitled},
		{"not break-glass", runs.BreakGlassRequest{Sponsor: dave, Grant: "read", Agent: "lead", Reason: "x"}, runs.ErrNotFound},
		{"agent not allowed", runs.BreakGlassRequest{Sponsor: dave, Grant: "glass", Agent: "helper", Reason: "x"}, runs.ErrNotEntitled},
	} {
		if _, err := e.m.BreakGlass(ctx, tt.req); !errors.Is(err, tt.is) {
			t.Errorf("%s: error = %v, want %v", tt.name, err, tt.is)
		}
	}
	e.restart(t)
	list, err := e.st.ListRuns(ctx, runs.RunFilter{BreakGlass: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != r.ID || list[0].BreakGlassReason != "prod outage" {
		t.Errorf("break-glass runs after restart = %+v", list)
	}
}
