package gateway

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/agentauth/agentauth/agentauth/audit"
	"github.com/agentauth/agentauth/agentauth/authz"
)

// TestAuditLogRecordsDecisionAndOutcome runs a call with the real SQLite
// audit log: the decision and the call result are both committed.
func TestAuditLogRecordsDecisionAndOutcome(t *testing.T) {
	l, err := audit.Open(filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	h := newHarness(t, func(o *Options) { o.Auditor = AuditLog(l) })
	c := h.client(t, runID(runA), "")
	if _, err := c.CallTool(context.Background(), callReq("calc__add", `{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	_, _ = h.post(t, h.ca.httpClient(t, runID(runA)),
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"fs__write","arguments":{}}}`, nil)

	h.gw.Flush()
	recs, err := l.Query(context.Background(), audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, r := range recs {
		kinds = append(kinds, string(r.Kind)+"/"+string(r.Reason)+"/"+string(r.Outcome))
	}
	// The outcome is written off the response path, so only the set of
	// records is fixed, not their order.
	want := []string{"call_result/granted/ok", "decision/granted/", "decision/tool_not_granted/"}
	slices.Sort(kinds)
	if len(kinds) != len(want) {
		t.Fatalf("records = %v, want %v", kinds, want)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Errorf("record %d = %s, want %s", i, kinds[i], want[i])
		}
	}
	if recs[0].Kind != audit.KindDecision || recs[0].RunID != runA || recs[0].TraceID == "" || recs[0].ArgumentsDigest == "" {
		t.Errorf("decision record = %+v", recs[0])
	}
	if rep, err := l.Verify(context.Background()); err != nil {
		t.Errorf("verify: %v %+v", err, rep)
	}
}

func TestAuditRecordKeepsPolicyErrorDetail(t *testing.T) {
	d := authz.Decision{Effect: authz.Deny, Reason: authz.ReasonPolicyError, GrantID: "read",
		Message: "the policy could not decide this call",
		Detail:  `condition of grant "read" failed to evaluate: no such key: path`}
	rec := toAudit(Record{Decision: d}, audit.KindDecision)
	if !strings.Contains(rec.Message, d.Detail) {
		t.Errorf("audit message = %q, want it to hold the detail %q", rec.Message, d.Detail)
	}
	if rec.GrantID != "read" {
		t.Errorf("audit grant = %q, want read", rec.GrantID)
	}
	if strings.Contains(denialMessage(d), "no such key") {
		t.Errorf("the agent's message %q leaks the policy error", denialMessage(d))
	}
}
