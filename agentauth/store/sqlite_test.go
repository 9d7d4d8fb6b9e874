package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentauth/agentauth/agentauth/runs"
	"github.com/agentauth/agentauth/agentauth/store"
)

var t0 = time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)

func open(t *testing.T, path string) *store.SQLite {
	t.Helper()
	s, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func run(id, parent string, depth int, sponsor string, created time.Time) runs.Run {
	return runs.Run{ID: id, ParentID: parent, Agent: "a", SPIFFEID: "spiffe://t/agents/a/runs/" + id,
		Sponsor: runs.Sponsor{Issuer: "local", Subject: sponsor, Groups: []string{"g"}}, Purpose: "p",
		Grants: []string{"read"}, Budgets: map[string]int64{"read": 5}, Depth: depth,
		Created: created, Expiry: created.Add(time.Hour), Status: runs.StatusActive}
}

func TestRoundTripAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state", "agentauth.db")
	s := open(t, path)
	root := run("R1", "", 0, "alice", t0)
	child := run("C1", "R1", 1, "alice", t0)
	for _, r := range []runs.Run{root, child} {
		if err := s.InsertRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.InsertRun(ctx, root); err == nil {
		t.Error("inserting the same run id twice succeeded")
	}
	if err := s.SetRunStatus(ctx, []string{"C1"}, runs.StatusRevoked, "why", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveBudgets(ctx, []runs.BudgetUse{{RunID: "R1", GrantID: "read", Used: 3}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSponsorActive(ctx, runs.SponsorKey{Issuer: "local", Subject: "bob"}, false, t0); err != nil {
		t.Fatal(err)
	}
	a := runs.Approval{ID: "A1", RunID: "R1", GrantID: "read", Status: runs.ApprovalPending,
		Requested: t0, Expires: t0.Add(time.Hour), Sponsor: root.Sponsor}
	if err := s.PutApproval(ctx, a); err != nil {
		t.Fatal(err)
	}
	s.Close()

	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("database mode = %v, want 0600", info.Mode().Perm())
	}
	s = open(t, path)
	st, err := s.LoadState(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Runs) != 2 || st.Runs[0].ID != "R1" || st.Runs[1].Status != runs.StatusRevoked ||
		st.Runs[1].StatusReason != "why" || st.Runs[1].ParentID != "R1" {
		t.Errorf("runs = %+v", st.Runs)
	}
	if st.Runs[0].Budgets["read"] != 5 || !st.Runs[0].Created.Equal(t0) {
		t.Errorf("root round trip = %+v", st.Runs[0])
	}
	if len(st.Budgets) != 1 || st.Budgets[0].Used != 3 {
		t.Errorf("budgets = %+v", st.Budgets)
	}
	if len(st.InactiveSponsors) != 1 || st.InactiveSponsors[0].Subject != "bob" {
		t.Errorf("inactive sponsors = %+v", st.InactiveSponsors)
	}
	if len(st.Approvals) != 1 || st.Approvals[0].ID != "A1" {
		t.Errorf("approvals = %+v", st.Approvals)
	}
	later, err := s.LoadState(ctx, t0.Add(2*time.Hour))
	if err != nil || len(later.Runs) != 0 || len(later.Approvals) != 0 {
		t.Errorf("state after every expiry = %+v, %v", later, err)
	}
}

func TestListRunsFilters(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "agentauth.db"))
	for i, r := range []runs.Run{run("A", "", 0, "alice", t0), run("B", "A", 1, "alice", t0.Add(time.Second)),
		run("C", "", 0, "bob", t0.Add(2*time.Second))} {
		if i == 2 {
			r.BreakGlass, r.BreakGlassReason = true, "outage"
		}
		if err := s.InsertRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetRunStatus(ctx, []string{"B"}, runs.StatusRevoked, "", t0); err != nil {
		t.Fatal(err)
	}
	ids := func(f runs.RunFilter) []string {
		t.Helper()
		list, err := s.ListRuns(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range list {
			out = append(out, r.ID)
		}
		return out
	}
	tests := []struct {
		name string
		f    runs.RunFilter
		want string
	}{
		{"all newest first", runs.RunFilter{}, "[C B A]"},
		{"sponsor", runs.RunFilter{Sponsor: &runs.SponsorKey{Issuer: "local", Subject: "alice"}}, "[B A]"},
		{"parent", runs.RunFilter{ParentID: "A"}, "[B]"},
		{"revoked", runs.RunFilter{Status: runs.StatusRevoked}, "[B]"},
		{"active", runs.RunFilter{Status: runs.StatusActive, Now: t0}, "[C A]"},
		{"expired", runs.RunFilter{Status: runs.StatusExpired, Now: t0.Add(2 * time.Hour)}, "[C A]"},
		{"break glass", runs.RunFilter{BreakGlass: true}, "[C]"},
		{"limit", runs.RunFilter{Limit: 1}, "[C]"},
	}
	for _, tt := range tests {
		if got := fmtIDs(ids(tt.f)); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
	if _, err := s.GetRun(ctx, "nope"); !errors.Is(err, runs.ErrNotFound) {
		t.Errorf("GetRun of a missing run: %v, want ErrNotFound", err)
	}
}

func fmtIDs(ids []string) string {
	out := "["
	for i, id := range ids {
		if i > 0 {
			out += " "
		}
		out += id
	}
	return out + "]"
}
