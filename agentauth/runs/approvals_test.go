package runs_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/agentauth/agentauth/agentauth/policy"
	"github.com/agentauth/agentauth/agentauth/runs"
)

func (e *env) approvalCall(t *testing.T, runID, args string) runs.ApprovalCall {
	t.Helper()
	l, ok := e.m.Lookup(runID)
	if !ok {
		t.Fatalf("run %s not in memory", runID)
	}
	return runs.ApprovalCall{Live: l, Grant: e.m.Policy().Grants["write"], Kind: policy.KindTool,
		Server: "fs", Name: "write_file", Args: []byte(args)}
}

func TestApprovalLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.start(t, "write")
	call := e.approvalCall(t, r.ID, `{"path":"/a"}`)
	id, err := e.m.RequestApproval(ctx, call)
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.m.RequestApproval(ctx, call)
	if err != nil || again != id {
		t.Errorf("second request for the same call = %s, %v; want the pending %s", again, err, id)
	}
	if ok, st, _ := e.m.UseApproval(ctx, id, call); ok || st != runs.ApprovalPending {
		t.Errorf("use of pending approval = %v %s", ok, st)
	}
	if _, err := e.m.Approve(ctx, alice, id, "mine"); !errors.Is(err, runs.ErrForbidden) {
		t.Errorf("sponsor approving own call: %v, want forbidden", err)
	}
	if _, err := e.m.Approve(ctx, dave, id, "not a steward"); !errors.Is(err, runs.ErrForbidden) {
		t.Errorf("non-member approving: %v, want forbidden", err)
	}
	workload := runs.Sponsor{Issuer: "local", Subject: "spiffe://example.test/agents/lead/runs/x", Groups: []string{"stewards"}}
	if _, err := e.m.Approve(ctx, workload, id, ""); !errors.Is(err, runs.ErrForbidden) {
		t.Errorf("workload approving: %v, want forbidden", err)
	}
	a, err := e.m.Approve(ctx, carol, id, "looks fine")
	if err != nil {
		t.Fatal(err)
	}
	if a.Status != runs.ApprovalApproved || a.DecidedBy.Subject != "carol" || a.Comment != "looks fine" {
		t.Errorf("approval = %+v", a)
	}
	if _, err := e.m.Deny(ctx, carol, id, "changed my mind"); !errors.Is(err, runs.ErrConflict) {
		t.Errorf("second decision: %v, want conflict", err)
	}
	other := e.approvalCall(t, r.ID, `{"path":"/b"}`)
	if _, _, err := e.m.UseApproval(ctx, id, other); !errors.Is(err, runs.ErrConflict) {
		t.Errorf("use for other arguments: %v, want conflict", err)
	}
	if ok, _, err := e.m.UseApproval(ctx, id, call); !ok || err != nil {
		t.Fatalf("first use = %v, %v", ok, err)
	}
	if ok, st, _ := e.m.UseApproval(ctx, id, call); ok || st != runs.ApprovalUsed {
		t.Errorf("second use = %v %s, want rejected as used", ok, st)
	}
	e.restart(t)
	call = e.approvalCall(t, r.ID, `{"path":"/a"}`)
	if ok, st, _ := e.m.UseApproval(ctx, id, call); ok || st != runs.ApprovalUsed {
		t.Errorf("use after restart = %v %s, want used", ok, st)
	}
	list, err := e.m.ListApprovals(ctx, runs.ApprovalFilter{RunID: r.ID})
	if err != nil || len(list) != 1 || list[0].Status != runs.ApprovalUsed {
		t.Errorf("approvals after restart = %+v, %v", list, err)
	}
}

func TestApprovalExpires(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.start(t, "write")
	call := e.approvalCall(t, r.ID, `{}`)
	id, err := e.m.RequestApproval(ctx, call)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Approve(ctx, carol, id, ""); err != nil {
		t.Fatal(err)
	}
	e.now = e.now.Add(runs.DefaultApprovalTTL)
	if ok, st, _ := e.m.UseApproval(ctx, id, call); ok || st != runs.ApprovalExpired {
		t.Errorf("use after expiry = %v %s, want expired", ok, st)
	}
}

func TestSponsorApprover(t *testing.T) {
	e := newEnv(t)
	p, err := policy.Parse("test.yaml", []byte(replaceOnce(testPolicy, "approval: {approver: steward}", "approval: {approver: sponsor}")))
	if err != nil {
		t.Fatal(err)
	}
	e.m.SetPolicy(p)
	ctx := context.Background()
	r := e.start(t, "write")
	call := e.approvalCall(t, r.ID, `{}`)
	id, err := e.m.RequestApproval(ctx, call)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Approve(ctx, carol, id, ""); !errors.Is(err, runs.ErrForbidden) {
		t.Errorf("another human approving a sponsor approval: %v, want forbidden", err)
	}
	if _, err := e.m.Approve(ctx, alice, id, "yes"); err != nil {
		t.Errorf("sponsor approving: %v", err)
	}
}

func TestAwaitApproval(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.start(t, "write")
	id, err := e.m.RequestApproval(ctx, e.approvalCall(t, r.ID, `{}`))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan bool, 1)
	go func() {
		ok, _ := e.m.Await(ctx, id)
		got <- ok
	}()
	if _, err := e.m.Approve(ctx, carol, id, ""); err != nil {
		t.Fatal(err)
	}
	select {
	case ok := <-got:
		if !ok {
			t.Error("Await = false after approval")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Await did not return after the approval")
	}
	id2, err := e.m.RequestApproval(ctx, e.approvalCall(t, r.ID, `{"x":1}`))
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := e.m.Await(short, id2); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Await on a pending approval = %v, want deadline exceeded", err)
	}
}

func TestPolicyReloadNarrowsRuns(t *testing.T) {
	e := newEnv(t)
	r := e.start(t, "read", "write")
	child := e.delegate(t, r.ID, "helper", "read")
	l, _ := e.m.Lookup(child.ID)
	if len(l.Match(policy.KindTool, "fs", "read_file")) != 1 {
		t.Fatal("child does not hold read")
	}
	p, err := policy.Parse("test.yaml", []byte(replaceOnce(testPolicy,
		"agents: [lead, helper]\n    grants: [read, write]", "agents: [lead, helper]\n    grants: [write]")))
	if err != nil {
		t.Fatal(err)
	}
	e.m.SetPolicy(p)
	if len(l.Match(policy.KindTool, "fs", "read_file")) != 0 {
		t.Error("child still holds read after the entitlement was removed")
	}
	root, _ := e.m.Lookup(r.ID)
	if !root.Holds("write") || root.Holds("read") {
		t.Error("root holds the wrong grants after reload")
	}
}

func TestBudgetsSurviveRestart(t *testing.T) {
	e := newEnv(t)
	r := e.start(t, "read")
	l, _ := e.m.Lookup(r.ID)
	for range 4 {
		l.Consume("read")
	}
	e.restart(t)
	l, _ = e.m.Lookup(r.ID)
	if got := l.Calls("read"); got != 4 {
		t.Errorf("calls after restart = %d, want 4", got)
	}
	if got := l.Remaining("read"); got != 6 {
		t.Errorf("remaining after restart = %d, want 6", got)
	}
}

func replaceOnce(s, old, new string) string {
	if !strings.Contains(s, old) {
		panic("test policy does not contain " + old)
	}
	return strings.Replace(s, old, new, 1)
}

func TestAwaitDecidedAfterRestart(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.start(t, "write")
	id, err := e.m.RequestApproval(ctx, e.approvalCall(t, r.ID, `{}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Deny(ctx, carol, id, "no"); err != nil {
		t.Fatal(err)
	}
	e.restart(t)
	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ok, err := e.m.Await(short, id)
	if err != nil || ok {
		t.Errorf("Await of an approval denied before restart = %v, %v; want false at once", ok, err)
	}
	again, err := e.m.RequestApproval(ctx, e.approvalCall(t, r.ID, `{}`))
	if err != nil || again == id {
		t.Errorf("request after denial = %s, %v; want a new approval", again, err)
	}
}
