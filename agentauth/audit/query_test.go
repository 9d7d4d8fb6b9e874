package audit

import (
	"context"
	"testing"
	"time"

	"github.com/agentauth/agentauth/agentauth/authz"
)

func hops(ids ...string) []authz.Hop {
	var out []authz.Hop
	for _, id := range ids {
		out = append(out, authz.Hop{RunID: id, Agent: "a", SPIFFEID: "spiffe://agentauth.local/agents/a/runs/" + id})
	}
	return out
}

func TestQueryFilters(t *testing.T) {
	l := openTest(t)
	ctx := context.Background()
	old := time.Now().Add(-time.Hour)
	records := []Record{
		{Kind: KindRunStart, SponsorSubject: "alice", Chain: hops("R1"), Time: old},
		{Kind: KindDecision, Effect: authz.Allow, SponsorSubject: "alice", Chain: hops("R1"), Server: "fs", Tool: "read"},
		{Kind: KindDelegation, SponsorSubject: "alice", Chain: hops("R1", "C1")},
		{Kind: KindDecision, Effect: authz.Deny, SponsorSubject: "alice", Chain: hops("R1", "C1"), Server: "fs", Tool: "write"},
		{Kind: KindDecision, Effect: authz.Allow, SponsorSubject: "alice", Chain: hops("R1", "C1", "G1"), Server: "web", Tool: "fetch"},
		{Kind: KindDecision, Effect: authz.Deny, SponsorSubject: "bob", SponsorIssuer: "https://other", Chain: hops("R2"), Server: "fs", Tool: "read"},
	}
	for _, r := range records {
		if _, err := l.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name string
		f    Filter
		want []uint64
	}{
		{"all", Filter{}, []uint64{1, 2, 3, 4, 5, 6}},
		{"sponsor", Filter{Sponsor: "bob"}, []uint64{6}},
		{"sponsor issuer", Filter{Sponsor: "bob", SponsorIssuer: "https://idp"}, nil},
		{"run", Filter{RunID: "R1"}, []uint64{1, 2}},
		{"run and descendants", Filter{RunID: "R1", Descendants: true}, []uint64{1, 2, 3, 4, 5}},
		{"child and descendants", Filter{RunID: "C1", Descendants: true}, []uint64{3, 4, 5}},
		{"tool", Filter{Tool: "read"}, []uint64{2, 6}},
		{"server and tool", Filter{Server: "fs", Tool: "read", Sponsor: "alice"}, []uint64{2}},
		{"decision", Filter{Effect: authz.Deny}, []uint64{4, 6}},
		{"kind", Filter{Kind: KindDelegation}, []uint64{3}},
		{"since", Filter{Since: time.Now().Add(-time.Minute)}, []uint64{2, 3, 4, 5, 6}},
		{"after seq", Filter{AfterSeq: 4}, []uint64{5, 6}},
		{"limit", Filter{Limit: 2}, []uint64{1, 2}},
		{"newest", Filter{Limit: 2, Newest: true}, []uint64{5, 6}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			recs, err := l.Query(ctx, c.f)
			if err != nil {
				t.Fatal(err)
			}
			var got []uint64
			for _, r := range recs {
				got = append(got, r.Seq)
			}
			if len(got) != len(c.want) {
				t.Fatalf("got seqs %v, want %v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("got seqs %v, want %v", got, c.want)
				}
			}
		})
	}
}
