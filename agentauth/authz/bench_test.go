package authz_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentauth/agentauth/agentauth/authz"
	"github.com/agentauth/agentauth/agentauth/runs"
)

// benchPolicy declares n grants, each covering one tool of server fs with
// a path condition, and three agents that may hold the first ten.
func benchPolicy(n int) string {
	var b strings.Builder
	b.WriteString("grants:\n")
	for i := range n {
		fmt.Fprintf(&b, "  g%d:\n    tools: [{server: fs, names: [tool_%d]}]\n", i, i)
		fmt.Fprintf(&b, "    condition: path_within(args.path, \"/data/%d\")\n    budget: 1000000000\n", i)
	}
	held := "[g0, g1, g2, g3, g4, g5, g6, g7, g8, g9]"
	b.WriteString("agents:\n")
	for _, a := range []string{"a0", "a1", "a2"} {
		fmt.Fprintf(&b, "  %s: {grants: %s, max_delegation_depth: 3, max_fan_out: 10}\n", a, held)
	}
	fmt.Fprintf(&b, "entitlements:\n  - sponsors: {groups: [eng]}\n    agents: [a0, a1, a2]\n    grants: %s\n", held)
	return b.String()
}

// benchChain starts a 3-hop chain a0 -> a1 -> a2 under benchPolicy and
// returns the fixture and the leaf run's id.
func benchChain(b *testing.B) (*fixture, string) {
	f := newFixture(b, mustParse(b, benchPolicy(10_000)))
	ctx := context.Background()
	grants := []string{"g0", "g1", "g2", "g3", "g4", "g5", "g6", "g7", "g8", "g9"}
	root, err := f.m.StartRun(ctx, runs.StartRequest{Sponsor: runs.Sponsor{Issuer: "local",
		Subject: "alice", Groups: []string{"eng"}}, Agent: "a0", Grants: grants, TTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	child, err := f.m.Delegate(ctx, runs.DelegateRequest{ParentID: root.ID, Agent: "a1", Grants: grants})
	if err != nil {
		b.Fatal(err)
	}
	leaf, err := f.m.Delegate(ctx, runs.DelegateRequest{ParentID: child.ID, Agent: "a2", Grants: grants[:3]})
	if err != nil {
		b.Fatal(err)
	}
	return f, leaf.ID
}

// BenchmarkAuthorize3Hop10kGrants measures one allowed decision of the
// third run of a chain with 10,000 grants loaded: chain and sponsor
// checks, grant lookup, exact argument decoding, a CEL path condition
// and the budget of all three runs.
func BenchmarkAuthorize3Hop10kGrants(b *testing.B) {
	f, leaf := benchChain(b)
	ctx := context.Background()
	req := authz.Request{RunID: leaf, Now: f.clock.t.Add(time.Minute),
		Target:    authz.Target{Kind: authz.KindTool, Server: "fs", Name: "tool_2"},
		Arguments: []byte(`{"path":"/data/2/report.md"}`)}
	if d := f.a.Authorize(ctx, req); !d.Allowed() {
		b.Fatalf("decision = %+v, want allow", d)
	}
	durations := make([]time.Duration, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		d := f.a.Authorize(ctx, req)
		durations[i] = time.Since(start)
		if !d.Allowed() {
			b.Fatalf("decision %d = %s/%s", i, d.Effect, d.Reason)
		}
	}
	b.StopTimer()
	slices.Sort(durations)
	b.ReportMetric(float64(durations[len(durations)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(durations[len(durations)*99/100].Nanoseconds()), "p99-ns")
}

// BenchmarkVisible measures the tools/list filter for the same chain.
func BenchmarkVisible(b *testing.B) {
	f, leaf := benchChain(b)
	ctx := context.Background()
	t := authz.Target{Kind: authz.KindTool, Server: "fs", Name: "tool_2"}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if !f.a.Visible(ctx, leaf, t) {
			b.Fatal("tool_2 not visible")
		}
	}
}
