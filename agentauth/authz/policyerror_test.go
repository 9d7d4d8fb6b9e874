package authz_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/agentauth/agentauth/agentauth/authz"
	"github.com/agentauth/agentauth/agentauth/runs"
	"github.com/agentauth/agentauth/agentauth/store"
)

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newLoggedFixture is newFixture with the manager logging to logs.
func newLoggedFixture(t *testing.T, logs *syncBuffer) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "agentauth.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := newFixture(t, mustParse(t, reasonPolicy))
	m, err := runs.Open(ctx, runs.Options{TrustDomain: trustDomain, Store: st, Policy: f.m.Policy(),
		Now: f.clock.now, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	f.m, f.a, f.st = m, authz.New(m), st
	return f
}

func TestPolicyErrorNamesGrant(t *testing.T) {
	var logs syncBuffer
	f := newLoggedFixture(t, &logs)
	r := f.start(t, "read")

	d := f.call(r.ID, "fs", "read_file", `{}`)
	if d.Reason != authz.ReasonPolicyError {
		t.Fatalf("reason = %s; want policy_error", d.Reason)
	}
	if d.GrantID != "read" {
		t.Errorf("GrantID = %q; want read", d.GrantID)
	}
	if want := `condition of grant "read" failed to evaluate: `; !strings.HasPrefix(d.Detail, want) {
		t.Errorf("Detail = %q; want it to start with %q", d.Detail, want)
	}
	if !strings.Contains(d.Detail, "path") {
		t.Errorf("Detail = %q; want the CEL error naming the missing key", d.Detail)
	}
	if strings.Contains(d.Message, "path") {
		t.Errorf("Message = %q shows the agent the CEL error", d.Message)
	}
	if strings.Contains(d.Message, `"read"`) {
		t.Errorf("Message = %q shows the agent the grant", d.Message)
	}

	f.call(r.ID, "fs", "read_file", `{}`)
	out := logs.String()
	if n := strings.Count(out, "level=WARN"); n != 1 {
		t.Errorf("logged %d warnings for two identical failures; want 1:\n%s", n, out)
	}
	for _, want := range []string{"run=" + r.ID, "grant=read", "failed to evaluate"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

func TestPolicyErrorToolServerGrant(t *testing.T) {
	var logs syncBuffer
	f := newLoggedFixture(t, &logs)
	r := f.start(t, "read")
	d := f.a.Authorize(context.Background(), authz.Request{RunID: r.ID, Now: f.clock.t,
		Via:    authz.ToolServerSPIFFEID(trustDomain, "relay"),
		Target: authz.Target{Kind: authz.KindTool, Server: "fs", Name: "read_file"}, Arguments: []byte(`{}`)})
	if d.Reason != authz.ReasonPolicyError {
		t.Fatalf("reason = %s; want policy_error", d.Reason)
	}
	if d.GrantID != "read" {
		t.Errorf("GrantID = %q; want read", d.GrantID)
	}
	if !strings.HasPrefix(d.Detail, `condition of grant "read" failed to evaluate: `) {
		t.Errorf("Detail = %q", d.Detail)
	}
	if !strings.Contains(logs.String(), "run="+r.ID) {
		t.Errorf("log lacks the run id:\n%s", logs.String())
	}
}
