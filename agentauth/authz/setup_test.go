package authz_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentauth/agentauth/agentauth/authz"
	"github.com/agentauth/agentauth/agentauth/policy"
	"github.com/agentauth/agentauth/agentauth/runs"
	"github.com/agentauth/agentauth/agentauth/store"
)

const trustDomain = "example.test"

// clock is a settable time source shared by a manager and the test.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

type fixture struct {
	m     *runs.Manager
	a     *authz.Authorizer
	clock *clock
	st    *store.SQLite
}

func newFixture(tb testing.TB, p *policy.Policy) *fixture {
	tb.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(tb.TempDir(), "agentauth.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	m, err := runs.Open(ctx, runs.Options{TrustDomain: trustDomain, Store: st, Policy: p, Now: c.now})
	if err != nil {
		tb.Fatal(err)
	}
	return &fixture{m: m, a: authz.New(m), clock: c, st: st}
}

func mustParse(tb testing.TB, doc string) *policy.Policy {
	tb.Helper()
	p, err := policy.Parse("test.yaml", []byte(doc))
	if err != nil {
		tb.Fatal(err)
	}
	return p
}
