package identity_test

import (
	"context"
	"crypto/ecdsa"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agentauth/agentauth/spiffe/identity"
	"github.com/agentauth/agentauth/spiffe/internal/spiffetest"
	"github.com/agentauth/agentauth/spiffe/issuer"
)

var (
	td    = spiffeid.RequireTrustDomainFromString("example.org")
	runID = spiffeid.RequireFromString("spiffe://example.org/agents/a/runs/r1")
)

func newIssuer(t testing.TB) (*issuer.Issuer, *spiffetest.Root) {
	t.Helper()
	clock := spiffetest.NewClock(time.Now())
	root := spiffetest.NewRoot(t, td, clock)
	iss, err := issuer.New(context.Background(), issuer.Config{
		TrustDomain: td, SVIDTTL: 10 * time.Minute, JWTTTL: 5 * time.Minute, SigningTTL: time.Hour,
		MintCA: root.MintCA, // the wall clock issues, because go-spiffe validates JWTs against it
	})
	if err != nil {
		t.Fatal(err)
	}
	return iss, root
}

func TestValidateJWTSVID(t *testing.T) {
	iss, _ := newIssuer(t)
	token, err := iss.MintJWTSVID(context.Background(), runID, "gateway", 0)
	if err != nil {
		t.Fatal(err)
	}
	svid, err := identity.ValidateJWTSVID(token, iss.JWTBundle(), "gateway")
	if err != nil || svid.ID != runID {
		t.Fatalf("ValidateJWTSVID = %v, %v", svid, err)
	}
}

// signWith signs claims with key under kid, as a hostile or buggy issuer
// holding a bundle key could.
func signWith(t *testing.T, key *ecdsa.PrivateKey, kid string, claims jwt.Claims) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	token, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func TestValidateJWTSVIDRejects(t *testing.T) {
	iss, _ := newIssuer(t)
	good, err := iss.MintJWTSVID(context.Background(), runID, "gateway", 0)
	if err != nil {
		t.Fatal(err)
	}
	key := spiffetest.NewKey(t)
	bundle := iss.JWTBundle()
	if err := bundle.AddJWTAuthority("test-kid", key.Public()); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims := func(mutate func(*jwt.Claims)) jwt.Claims {
		c := jwt.Claims{Subject: runID.String(), Audience: jwt.Audience{"gateway"},
			Expiry: jwt.NewNumericDate(now.Add(time.Minute)), IssuedAt: jwt.NewNumericDate(now)}
		if mutate != nil {
			mutate(&c)
		}
		return c
	}
	otherKey := spiffetest.NewKey(t)

	cases := []struct {
		name, token, audience, want string
		bundles                     jwtbundle.Source
	}{
		{"empty audience", good, "", "audience is empty", bundle},
		{"wrong audience", good, "other", "audience", bundle},
		{"no bundle source", good, "gateway", "bundle source", nil},
		{"oversized", strings.Repeat("a", identity.MaxJWTLength+1), "gateway", "limit", bundle},
		{"garbage", "a.b.c", "gateway", "invalid JWT-SVID", bundle},
		{"two audiences", signWith(t, key, "test-kid", claims(func(c *jwt.Claims) {
			c.Audience = jwt.Audience{"gateway", "other"}
		})), "gateway", "exactly one", bundle},
		{"expired", signWith(t, key, "test-kid", claims(func(c *jwt.Claims) {
			c.Expiry = jwt.NewNumericDate(now.Add(-10 * time.Minute))
		})), "gateway", "expired", bundle},
		{"not yet valid", signWith(t, key, "test-kid", claims(func(c *jwt.Claims) {
			c.NotBefore = jwt.NewNumericDate(now.Add(10 * time.Minute))
			c.Expiry = jwt.NewNumericDate(now.Add(20 * time.Minute))
		})), "gateway", "invalid JWT-SVID", bundle},
		{"unknown key", signWith(t, otherKey, "other-kid", claims(nil)), "gateway", "no JWT authority", bundle},
		{"known kid, wrong key", signWith(t, otherKey, "test-kid", claims(nil)), "gateway", "invalid JWT-SVID", bundle},
		{"other trust domain", signWith(t, key, "test-kid", claims(func(c *jwt.Claims) {
			c.Subject = "spiffe://evil.example/agents/a/runs/r1"
		})), "gateway", "no bundle", bundle},
		{"trust domain subject", signWith(t, key, "test-kid", claims(func(c *jwt.Claims) {
			c.Subject = "spiffe://example.org"
		})), "gateway", "empty path", bundle},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			svid, err := identity.ValidateJWTSVID(tc.token, tc.bundles, tc.audience)
			if err == nil {
				t.Fatalf("ValidateJWTSVID accepted the token for %s", svid.ID)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %q, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestVerifyX509SVID(t *testing.T) {
	iss, root := newIssuer(t)
	chain, err := iss.SignCSR(context.Background(), spiffetest.NewCSR(t, spiffetest.NewKey(t)), runID, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if id, err := identity.VerifyX509SVID(chain, root.Bundle(), now); err != nil || id != runID {
		t.Fatalf("VerifyX509SVID = %s, %v", id, err)
	}

	cases := map[string]time.Time{
		"expired":       chain[0].NotAfter.Add(time.Second),
		"not yet valid": chain[0].NotBefore.Add(-time.Second),
	}
	for name, at := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := identity.VerifyX509SVID(chain, root.Bundle(), at); err == nil {
				t.Fatalf("VerifyX509SVID accepted the SVID at %s", at)
			}
		})
	}
	t.Run("other root", func(t *testing.T) {
		other := spiffetest.NewRoot(t, td, spiffetest.NewClock(now))
		if _, err := identity.VerifyX509SVID(chain, other.Bundle(), now); err == nil {
			t.Fatal("VerifyX509SVID accepted an SVID from another CA")
		}
	})
	t.Run("missing signing CA", func(t *testing.T) {
		if _, err := identity.VerifyX509SVID(chain[:1], root.Bundle(), now); err == nil {
			t.Fatal("VerifyX509SVID accepted a chain without its signing CA")
		}
	})
	t.Run("signing CA as leaf", func(t *testing.T) {
		if _, err := identity.VerifyX509SVID(chain[1:], root.Bundle(), now); err == nil {
			t.Fatal("VerifyX509SVID accepted a CA certificate as an SVID")
		}
	})
}

func FuzzValidateJWTSVID(f *testing.F) {
	iss, _ := newIssuer(f)
	bundle := iss.JWTBundle()
	good, err := iss.MintJWTSVID(context.Background(), runID, "gateway", 0)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, "gateway")
	f.Add(good, "")
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJzcGlmZmU6Ly9leGFtcGxlLm9yZy9hIn0.", "gateway")
	f.Add("a.b.c", "x")
	f.Fuzz(func(t *testing.T, token, audience string) {
		svid, err := identity.ValidateJWTSVID(token, bundle, audience)
		if err != nil {
			return
		}
		// Only tokens the issuer signed can pass, so anything accepted
		// must be the issuer's token for its one audience.
		if token != good || audience != "gateway" || svid.ID != runID {
			t.Fatalf("accepted token %q for audience %q as %s", token, audience, svid.ID)
		}
	})
}
