package control

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/agentauth/agentauth/agentauth/control/api"
	"github.com/agentauth/agentauth/agentauth/runs"
	"github.com/agentauth/agentauth/internal/oidcop"
)

const integrationPolicy = `
agents:
  researcher:
    grants: [read, write]
    max_delegation_depth: 2
    max_fan_out: 4
  summarizer:
    grants: [read]
roles:
  steward: {groups: [stewards]}
grants:
  read:
    tools: [{server: fs, names: [read_file]}]
  write:
    tools: [{server: fs, names: [write_file]}]
    approval: {approver: steward}
entitlements:
  - sponsors: {groups: [eng]}
    agents: [researcher, summarizer]
    grants: [read, write]
`

// withPeople adds the OP (with alice in eng and bob in stewards) and a
// real run manager.
func withPeople(h *harness) {
	withOP(h)
	h.op.AddUser("alice", oidcop.User{Subject: "u-alice", Email: "alice@example.org", Groups: []string{"eng"}})
	h.op.AddUser("bob", oidcop.User{Subject: "u-bob", Email: "bob@example.org", Groups: []string{"stewards"}})
	withManager(integrationPolicy)(h)
}

// pendingApproval starts a run as alice and asks for approval of a
// write_file call, as the gateway does when a grant needs approval.
func (h *harness) pendingApproval(t *testing.T, alice string) (api.Run, string) {
	t.Helper()
	var start api.StartRunResponse
	st, e := call(t, h.tlsClient(nil), "POST", h.tlsURL+"/v1/runs", alice,
		api.StartRunRequest{Agent: "researcher", Grants: []string{"read", "write"}, Purpose: "tidy notes"}, &start)
	if st != http.StatusCreated {
		t.Fatalf("start run: status %d %+v", st, e)
	}
	live, ok := h.manager.Lookup(start.Run.ID)
	if !ok {
		t.Fatal("run not live")
	}
	id, err := h.manager.RequestApproval(context.Background(), runs.ApprovalCall{Live: live,
		Grant: h.manager.Policy().Grants["write"], Kind: "tool", Server: "fs", Name: "write_file",
		Args: []byte(`{"path":"notes.txt"}`)})
	if err != nil {
		t.Fatal(err)
	}
	return start.Run, id
}

func TestManagerApprovalFlow(t *testing.T) {
	h := newHarness(t, withPeople)
	alice := h.op.Token(t, "alice", testClientID, redirect)
	bob := h.op.Token(t, "bob", testClientID, redirect)
	run, apID := h.pendingApproval(t, alice)

	var list []api.Approval
	if st, e := call(t, h.tlsClient(nil), "GET", h.tlsURL+"/v1/approvals", bob, nil, &list); st != http.StatusOK {
		t.Fatalf("bob lists: status %d %+v", st, e)
	}
	if len(list) != 1 || list[0].ID != apID || list[0].Tool != "write_file" || len(list[0].Chain) != 1 ||
		list[0].Purpose != "tidy notes" {
		t.Fatalf("bob sees %+v; want the one write_file approval with its chain and purpose", list)
	}
	st, e := call(t, h.tlsClient(nil), "POST", h.tlsURL+"/v1/approvals/"+apID+"/approve", alice,
		api.DecisionRequest{Comment: "mine"}, nil)
	if st != http.StatusForbidden {
		t.Errorf("sponsor approves own run's call: status %d %+v; want 403", st, e)
	}
	var a api.Approval
	st, e = call(t, h.tlsClient(nil), "POST", h.tlsURL+"/v1/approvals/"+apID+"/approve", bob,
		api.DecisionRequest{Comment: "fine"}, &a)
	if st != http.StatusOK || a.Status != "approved" || a.DecidedBy == nil || a.DecidedBy.Subject != "u-bob" {
		t.Fatalf("bob approves: status %d %+v, %+v", st, e, a)
	}
	got, err := h.manager.GetApproval(apID)
	if err != nil || got.Status != runs.ApprovalApproved || got.Comment != "fine" {
		t.Errorf("manager has %+v, %v; want approved with the comment", got, err)
	}
	_ = run
}

func TestManagerRunLifecycle(t *testing.T) {
	h := newHarness(t, withPeople)
	alice := h.op.Token(t, "alice", testClientID, redirect)
	var start api.StartRunResponse
	st, e := call(t, h.tlsClient(nil), "POST", h.tlsURL+"/v1/runs", alice,
		api.StartRunRequest{Agent: "researcher", Grants: []string{"read"}}, &start)
	if st != http.StatusCreated {
		t.Fatalf("start: status %d %+v", st, e)
	}
	st, e = call(t, h.tlsClient(nil), "POST", h.tlsURL+"/v1/runs", alice,
		api.StartRunRequest{Agent: "researcher", Grants: []string{"admin"}}, nil)
	if st < 400 || st >= 500 || !strings.Contains(e.Message, `"admin"`) {
		t.Errorf("ungranted start: status %d %+v; want a 4xx naming the grant", st, e)
	}

	key, csrPEM := newCSR(t)
	var svid api.SVID
	if st, e := call(t, h.tlsClient(nil), "POST", h.tlsURL+"/v1/svid/exchange", "",
		api.ExchangeRequest{BootstrapToken: start.BootstrapToken, CSR: csrPEM}, &svid); st != http.StatusOK {
		t.Fatalf("exchange: status %d %+v", st, e)
	}
	agent := h.tlsClient(agentCert(t, key, &svid))
	var child api.StartRunResponse
	st, e = call(t, agent, "POST", h.tlsURL+"/v1/runs/"+start.Run.ID+"/delegate", "",
		api.DelegateRequest{Agent: "summarizer", Grants: []string{"read"}}, &child)
	if st != http.StatusCreated || len(child.Run.Chain) != 2 || child.Run.Chain[0].RunID != start.Run.ID {
		t.Fatalf("delegate: status %d %+v, chain %+v", st, e, child.Run.Chain)
	}
	st, e = call(t, agent, "POST", h.tlsURL+"/v1/runs/"+start.Run.ID+"/delegate", "",
		api.DelegateRequest{Agent: "summarizer", Grants: []string{"write"}}, nil)
	if st < 400 {
		t.Errorf("widening delegate: status %d; want an error", st)
	}

	var revoked api.Run
	st, e = call(t, h.tlsClient(nil), "POST", h.tlsURL+"/v1/runs/"+start.Run.ID+"/revoke", alice,
		api.RevokeRequest{Reason: "done"}, &revoked)
	if st != http.StatusOK || revoked.Status != "revoked" {
		t.Fatalf("revoke: status %d %+v, %s", st, e, revoked.Status)
	}
	var c api.Run
	call(t, h.tlsClient(nil), "GET", h.tlsURL+"/v1/runs/"+child.Run.ID, alice, nil, &c)
	if c.Status != "revoked" {
		t.Errorf("child after parent revoke: %s, want revoked", c.Status)
	}
	_, csr2 := newCSR(t)
	if st, _ := call(t, agent, "POST", h.tlsURL+"/v1/svid/renew", "", api.RenewRequest{CSR: csr2}, nil); st != http.StatusForbidden {
		t.Errorf("renew after revoke: status %d, want 403", st)
	}
	var list []api.Run
	call(t, h.tlsClient(nil), "GET", h.tlsURL+"/v1/runs", alice, nil, &list)
	if len(list) != 2 {
		t.Errorf("alice lists %d runs, want 2", len(list))
	}
}
