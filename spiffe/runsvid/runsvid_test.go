package runsvid_test

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agentauth/agentauth/spiffe/ca"
	"github.com/agentauth/agentauth/spiffe/identity"
	"github.com/agentauth/agentauth/spiffe/internal/spiffetest"
	"github.com/agentauth/agentauth/spiffe/runsvid"
)

var td = spiffeid.RequireTrustDomainFromString("example.org")

// openCA returns an embedded CA whose SVIDs live 2 s, so renewal happens
// within a test.
func openCA(t *testing.T) *ca.CA {
	t.Helper()
	c, err := ca.Open(context.Background(), ca.Config{
		Dir: t.TempDir(), TrustDomain: td,
		SVIDTTL: 2 * time.Second, JWTTTL: time.Minute, SigningTTL: time.Hour, RootTTL: 24 * time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func runID(t *testing.T) spiffeid.ID {
	t.Helper()
	id, err := identity.RunID(td, "researcher", identity.NewRunID())
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// waitFor polls cond until it holds or 20 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestSourceRenews(t *testing.T) {
	c := openCA(t)
	id := runID(t)
	var calls atomic.Int32
	sign := func(ctx context.Context, der []byte) ([]*x509.Certificate, error) {
		calls.Add(1)
		return c.SignRunCSR(ctx, der, id, time.Now().Add(time.Hour))
	}
	s, err := runsvid.New(context.Background(), sign, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	first, err := s.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := x509svid.Verify(first.Certificates, c); err != nil || got != id || s.ID() != id {
		t.Fatalf("first SVID: %s, %v", got, err)
	}
	waitFor(t, "a renewed SVID", func() bool {
		svid, err := s.GetX509SVID()
		return err == nil && svid != first
	})
	second, _ := s.GetX509SVID()
	if second.PrivateKey == first.PrivateKey {
		t.Fatal("renewal reused the key")
	}
	if _, _, err := x509svid.Verify(second.Certificates, c); err != nil {
		t.Fatal(err)
	}
}

func TestSourceFailsClosedAfterExpiry(t *testing.T) {
	c := openCA(t)
	id := runID(t)
	var fail atomic.Bool
	sign := func(ctx context.Context, der []byte) ([]*x509.Certificate, error) {
		if fail.Load() {
			return nil, errors.New("gateway unreachable")
		}
		return c.SignRunCSR(ctx, der, id, time.Now().Add(time.Hour))
	}
	s, err := runsvid.New(context.Background(), sign, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fail.Store(true)

	waitFor(t, "the SVID to expire", func() bool {
		_, err := s.GetX509SVID()
		return err != nil
	})
	if _, err := s.GetX509SVID(); !strings.Contains(err.Error(), "expired") {
		t.Fatalf("error = %v", err)
	}
}

func TestSourceRejectsBadChains(t *testing.T) {
	c := openCA(t)
	id := runID(t)
	other := spiffetest.NewKey(t)
	cases := map[string]runsvid.SignFunc{
		"error": func(context.Context, []byte) ([]*x509.Certificate, error) {
			return nil, errors.New("denied")
		},
		"empty chain": func(context.Context, []byte) ([]*x509.Certificate, error) {
			return nil, nil
		},
		"another key": func(ctx context.Context, _ []byte) ([]*x509.Certificate, error) {
			return c.SignRunCSR(ctx, spiffetest.NewCSR(t, other), id, time.Now().Add(time.Hour))
		},
	}
	for name, sign := range cases {
		t.Run(name, func(t *testing.T) {
			if s, err := runsvid.New(context.Background(), sign, nil); err == nil {
				s.Close()
				t.Fatal("New accepted the chain")
			}
		})
	}
}

func TestSourceKeepsRunIdentity(t *testing.T) {
	c := openCA(t)
	id, otherID := runID(t), runID(t)
	var renewals atomic.Int32
	sign := func(ctx context.Context, der []byte) ([]*x509.Certificate, error) {
		if renewals.Add(1) > 1 {
			return c.SignRunCSR(ctx, der, otherID, time.Now().Add(time.Hour))
		}
		return c.SignRunCSR(ctx, der, id, time.Now().Add(time.Hour))
	}
	s, err := runsvid.New(context.Background(), sign, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	waitFor(t, "a renewal attempt", func() bool { return renewals.Load() > 1 })
	if s.ID() != id {
		t.Fatalf("source switched to %s after a renewal for another run", s.ID())
	}
}
