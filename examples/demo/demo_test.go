package demo_test

import (
	"bytes"
	"context"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentauth/agentauth/agentauth/audit"
	"github.com/agentauth/agentauth/agentauth/authz"
	"github.com/agentauth/agentauth/examples/demo"
	"github.com/agentauth/agentauth/internal/testenv"
	"github.com/agentauth/agentauth/traces/jaegertest"
)

// buildAgentauth builds the binary the demo starts its Go example tool
// servers from.
func buildAgentauth(t *testing.T) string {
	t.Helper()
	exe := filepath.Join(t.TempDir(), "agentauth")
	cmd := exec.Command("go", "build", "-o", exe, "./cmd/agentauth")
	cmd.Dir = testenv.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return exe
}

// TestDemoEndToEnd runs the demo with Jaeger up, then checks every decision
// in the audit log and the trace that Jaeger stored.
func TestDemoEndToEnd(t *testing.T) {
	testenv.NodeBin(t, "mcp-server-filesystem")
	j := jaegertest.Start(t)
	j.Setenv(t, "http/protobuf")
	exe := buildAgentauth(t)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out, logs bytes.Buffer
	res, err := demo.Run(ctx, demo.Options{
		Out: &out, Dir: filepath.Join(t.TempDir(), "demo"), Executable: exe,
		NodeModules: testenv.NodeModules(), ApprovalWait: 20 * time.Second,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	t.Logf("demo output:\n%s", out.String())
	if err != nil {
		t.Fatalf("demo: %v\ngateway log:\n%s", err, logs.String())
	}
	checkSteps(t, res)
	checkAudit(t, ctx, res)
	checkTrace(t, ctx, j, res)
}

func checkSteps(t *testing.T, res *demo.Result) {
	t.Helper()
	want := []struct{ actor, tool, effect string }{
		{"researcher", "fs__list_directory", "allowed"},
		{"researcher", "fs__read_text_file", "allowed"},
		{"researcher", "everything__echo", "allowed"},
		{"researcher", "fs__read_text_file", "denied"},
		{"researcher", "fs__read_text_file", "denied"},
		{"summarizer", "fs__read_text_file", "allowed"},
		{"summarizer", "fs__read_text_file", "denied"},
		{"summarizer", "fs__write_file", "denied"},
		{"researcher", "digest__summarize_file", "allowed"},
		{"researcher", "fs__write_file", "allowed"},
	}
	if len(res.Steps) != len(want) {
		t.Fatalf("demo made %d calls, want %d: %+v", len(res.Steps), len(want), res.Steps)
	}
	for i, w := range want {
		got := res.Steps[i]
		if got.Actor != w.actor || got.Tool != w.tool || got.Effect != w.effect {
			t.Errorf("step %d = %s %s %s (%s), want %s %s %s", i+1, got.Actor, got.Tool, got.Effect, got.Detail, w.actor, w.tool, w.effect)
		}
	}
	if d := res.Steps[8].Detail; !strings.Contains(d, "Launch plan") {
		t.Errorf("chained summary = %q, want the summary of the launch plan read through the gateway", d)
	}
}

func checkAudit(t *testing.T, ctx context.Context, res *demo.Result) {
	t.Helper()
	log, err := audit.Open(res.AuditPath, audit.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	rep, err := log.Verify(ctx)
	if err != nil || !rep.OK() {
		t.Fatalf("audit verify = %+v, %v", rep, err)
	}
	recs, err := log.Query(ctx, audit.Filter{RunID: res.RootRunID, Descendants: true, Kind: audit.KindDecision})
	if err != nil {
		t.Fatal(err)
	}
	type key struct {
		agent, tool string
		reason      authz.Reason
	}
	seen := map[key]audit.Record{}
	for _, r := range recs {
		if r.SponsorIssuer != "local" || r.SponsorSubject == "" {
			t.Errorf("record %d: sponsor %s:%s, want the local user", r.Seq, r.SponsorIssuer, r.SponsorSubject)
		}
		if r.TraceID != res.TraceID {
			t.Errorf("record %d: trace id %s, want the demo's trace %s", r.Seq, r.TraceID, res.TraceID)
		}
		last := r.Chain[len(r.Chain)-1]
		name := last.Agent
		if name == "" {
			name = last.SPIFFEID
		}
		seen[key{name, r.Tool, r.Reason}] = r
	}
	for _, k := range []key{
		{"researcher", "list_directory", authz.ReasonGranted},
		{"researcher", "read_text_file", authz.ReasonConditionFalse},
		{"summarizer", "read_text_file", authz.ReasonGranted},
		{"summarizer", "read_text_file", authz.ReasonConditionFalse},
		{"summarizer", "write_file", authz.ReasonToolNotGranted},
		{"researcher", "summarize_file", authz.ReasonGranted},
		{"spiffe://agentauth.local/tools/digest", "read_text_file", authz.ReasonGranted},
		{"researcher", "write_file", authz.ReasonApproved},
	} {
		if _, ok := seen[k]; !ok {
			t.Errorf("no decision record for %s calling %s with reason %s", k.agent, k.tool, k.reason)
		}
	}
	approvals, err := log.Query(ctx, audit.Filter{RunID: res.RootRunID, Kind: audit.KindApproval})
	if err != nil {
		t.Fatal(err)
	}
	approvedByBob := false
	for _, r := range approvals {
		if r.ActorSubject == "bob" && r.Effect == authz.Allow {
			approvedByBob = true
		}
	}
	if len(approvals) < 2 || !approvedByBob {
		t.Errorf("approval records = %+v, want the request and bob's approval", approvals)
	}
	if r, ok := seen[key{"summarizer", "write_file", authz.ReasonToolNotGranted}]; ok {
		if len(r.Chain) != 2 || r.Chain[0].RunID != res.RootRunID || r.Chain[1].RunID != res.ChildRunID {
			t.Errorf("summarizer record chain = %+v, want researcher run then summarizer run", r.Chain)
		}
	}
	if r, ok := seen[key{"spiffe://agentauth.local/tools/digest", "read_text_file", authz.ReasonGranted}]; ok {
		if len(r.Chain) != 2 || r.Chain[0].RunID != res.RootRunID {
			t.Errorf("chained record chain = %+v, want the researcher run then the digest tool server", r.Chain)
		}
	}
}

func checkTrace(t *testing.T, ctx context.Context, j *jaegertest.Jaeger, res *demo.Result) {
	t.Helper()
	if res.TraceID == "" {
		t.Fatal("the demo reported no trace id with OTEL_* set")
	}
	tr, err := j.WaitForTrace(ctx, res.TraceID, 20)
	if err != nil {
		t.Fatalf("read trace %s from Jaeger: %v", res.TraceID, err)
	}
	roots := tr.Roots()
	if len(roots) != 1 || roots[0].Name != "agentauth demo" {
		t.Fatalf("trace roots = %+v, want the one demo span", roots)
	}
	// The run's start and its delegation are control API spans of the
	// same trace.
	for _, name := range []string{"POST /v1/runs", "POST /v1/runs/{id}/delegate", "run researcher", "run summarizer"} {
		if _, ok := tr.Find(name); !ok {
			t.Errorf("trace has no span %q", name)
		}
	}
	if run, ok := tr.Find("run summarizer"); ok {
		if parent, ok := tr.Find("run researcher"); !ok || !descends(tr, run, parent.SpanID) {
			t.Errorf("the summarizer's run span does not descend from the researcher's")
		}
	}

	// The chained read is a gateway span under the digest call's gateway
	// span, so the chain is one tree.
	var digestCall, chainedRead *jaegertest.Span
	for i, s := range tr.Spans {
		switch {
		case s.Name == "tools/call digest__summarize_file":
			digestCall = &tr.Spans[i]
		case s.Name == "tools/call fs__read_text_file" && lastHop(s) == "spiffe://agentauth.local/tools/digest":
			chainedRead = &tr.Spans[i]
		}
	}
	if digestCall == nil {
		t.Fatal("no gateway span for the digest call")
	}
	if chainedRead == nil {
		for _, s := range tr.Children(digestCall.SpanID) {
			t.Logf("child of the digest call: %s %v", s.Name, s.Attributes)
		}
		t.Fatal("no gateway span for the digest server's chained read")
	}
	if !descends(tr, *chainedRead, digestCall.SpanID) {
		t.Errorf("the chained read span does not descend from the digest call span")
	}
	// The gateway's client span of the forwarded digest call sits between
	// the two: the tool server continued the trace from it.
	var clientSpan *jaegertest.Span
	for _, c := range tr.Children(digestCall.SpanID) {
		if c.Kind == "client" && c.Name == "tools/call summarize_file" {
			clientSpan = &c
		}
	}
	if clientSpan == nil {
		t.Errorf("no upstream client span under the digest call")
	} else if !descends(tr, *chainedRead, clientSpan.SpanID) {
		t.Errorf("the chained read does not descend from the upstream client span")
	}
	for _, s := range tr.Spans {
		if !strings.HasPrefix(s.Name, "tools/call ") || s.Kind != "server" {
			continue
		}
		for _, key := range []string{"mcp.method.name", "gen_ai.tool.name", "agentauth.decision",
			"agentauth.decision.reason", "agentauth.run.id", "agentauth.run.spiffe_id", "agentauth.sponsor.subject"} {
			if s.String(key) == "" {
				t.Errorf("span %s (%s) lacks %s: %v", s.Name, s.SpanID, key, s.Attributes)
			}
		}
		if len(s.StringSlice("agentauth.chain")) == 0 || s.Int("agentauth.chain.depth") == 0 {
			t.Errorf("span %s (%s) lacks the chain and its depth: %v", s.Name, s.SpanID, s.Attributes)
		}
	}
}

// descends reports whether s has ancestor as a parent, grandparent, …
func descends(tr jaegertest.Trace, s jaegertest.Span, ancestor string) bool {
	for s.ParentSpanID != "" {
		if s.ParentSpanID == ancestor {
			return true
		}
		p, ok := tr.Span(s.ParentSpanID)
		if !ok {
			return false
		}
		s = p
	}
	return false
}

// lastHop returns the last SPIFFE ID of a span's delegation chain.
func lastHop(s jaegertest.Span) string {
	chain := s.StringSlice("agentauth.chain")
	if len(chain) == 0 {
		return ""
	}
	return chain[len(chain)-1]
}
