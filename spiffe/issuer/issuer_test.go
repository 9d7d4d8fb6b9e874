package issuer_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agentauth/agentauth/spiffe/internal/spiffetest"
	"github.com/agentauth/agentauth/spiffe/issuer"
)

var (
	td    = spiffeid.RequireTrustDomainFromString("example.org")
	runID = spiffeid.RequireFromString("spiffe://example.org/agents/researcher/runs/r1")
	start = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
)

type fixture struct {
	clock  *spiffetest.Clock
	root   *spiffetest.Root
	issuer *issuer.Issuer
}

func newFixture(t *testing.T, mutate func(*issuer.Config)) *fixture {
	t.Helper()
	clock := spiffetest.NewClock(start)
	root := spiffetest.NewRoot(t, td, clock)
	cfg := issuer.Config{
		TrustDomain: td,
		SVIDTTL:     10 * time.Minute,
		JWTTTL:      5 * time.Minute,
		SigningTTL:  24 * time.Hour,
		MintCA:      root.MintCA,
		Now:         clock.Now,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	iss, err := issuer.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{clock: clock, root: root, issuer: iss}
}

func rawChain(chain []*x509.Certificate) [][]byte {
	raw := make([][]byte, len(chain))
	for i, c := range chain {
		raw[i] = c.Raw
	}
	return raw
}

func TestSignCSRRoundTrip(t *testing.T) {
	f := newFixture(t, nil)
	key := spiffetest.NewKey(t)
	runEnd := start.Add(time.Hour)

	chain, err := f.issuer.SignCSR(context.Background(), spiffetest.NewCSR(t, key), runID, runEnd)
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := x509svid.ParseAndVerify(rawChain(chain), f.root.Bundle(), x509svid.WithTime(start))
	if err != nil {
		t.Fatalf("go-spiffe rejects the SVID: %v", err)
	}
	if id != runID {
		t.Fatalf("SVID names %s, want %s", id, runID)
	}
	if _, err := x509svid.ParseRaw(concat(rawChain(chain)), mustPKCS8(t, key)); err != nil {
		t.Fatalf("x509svid.ParseRaw rejects the SVID with its key: %v", err)
	}

	leaf := chain[0]
	switch {
	case leaf.IsCA:
		t.Error("leaf is a CA")
	case leaf.KeyUsage != x509.KeyUsageDigitalSignature:
		t.Errorf("key usage = %v, want digitalSignature only", leaf.KeyUsage)
	case len(leaf.URIs) != 1 || len(leaf.DNSNames)+len(leaf.EmailAddresses)+len(leaf.IPAddresses) != 0:
		t.Errorf("SANs: URIs %v DNS %v email %v IP %v", leaf.URIs, leaf.DNSNames, leaf.EmailAddresses, leaf.IPAddresses)
	case !leaf.NotAfter.Equal(start.Add(10 * time.Minute)):
		t.Errorf("NotAfter = %s, want the SVID TTL from now", leaf.NotAfter)
	}
}

func concat(raw [][]byte) []byte {
	var out []byte
	for _, r := range raw {
		out = append(out, r...)
	}
	return out
}

func mustPKCS8(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestSignCSRNeverPastRunExpiry(t *testing.T) {
	f := newFixture(t, nil)
	runEnd := start.Add(3 * time.Minute)
	chain, err := f.issuer.SignCSR(context.Background(), spiffetest.NewCSR(t, spiffetest.NewKey(t)), runID, runEnd)
	if err != nil {
		t.Fatal(err)
	}
	if !chain[0].NotAfter.Equal(runEnd) {
		t.Fatalf("NotAfter = %s, want the run's expiry %s", chain[0].NotAfter, runEnd)
	}
}

func TestSignRejects(t *testing.T) {
	f := newFixture(t, nil)
	csr := spiffetest.NewCSR(t, spiffetest.NewKey(t))
	cases := []struct {
		name     string
		id       spiffeid.ID
		notAfter time.Time
		want     string
	}{
		{"expired run", runID, start.Add(-time.Second), "not in the future"},
		{"run ending now", runID, start, "not in the future"},
		{"other trust domain", spiffeid.RequireFromString("spiffe://evil.example/agents/a/runs/r1"), start.Add(time.Hour), "outside trust domain"},
		{"zero ID", spiffeid.ID{}, start.Add(time.Hour), "empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.issuer.SignCSR(context.Background(), csr, tc.id, tc.notAfter)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestRotationKeepsOldSVIDsVerifying(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	f.clock.Advance(12*time.Hour - time.Minute) // just before half of the CA's 24 h
	oldChain, err := f.issuer.SignCSR(ctx, spiffetest.NewCSR(t, spiffetest.NewKey(t)), runID, start.Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	oldJWT, err := f.issuer.MintJWTSVID(ctx, runID, "tools", 0)
	if err != nil {
		t.Fatal(err)
	}

	// Past half of the signing CA's lifetime the next call rotates.
	f.clock.Advance(2 * time.Minute)
	newChain, err := f.issuer.SignCSR(ctx, spiffetest.NewCSR(t, spiffetest.NewKey(t)), runID, start.Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if newChain[1].SerialNumber.Cmp(oldChain[1].SerialNumber) == 0 {
		t.Fatal("signing CA did not rotate after half of its lifetime")
	}
	newJWT, err := f.issuer.MintJWTSVID(ctx, runID, "tools", 0)
	if err != nil {
		t.Fatal(err)
	}
	if kid(t, newJWT) == kid(t, oldJWT) {
		t.Fatal("JWT key did not rotate with the signing CA")
	}

	// Both SVIDs verify against the unchanged root: the old one carries its
	// own signing CA in its chain.
	at := x509svid.WithTime(f.clock.Now())
	if _, _, err := x509svid.ParseAndVerify(rawChain(oldChain[:1]), f.root.Bundle(), at); err == nil {
		t.Fatal("leaf without its signing CA verified; the test proves nothing")
	}
	if _, _, err := x509svid.ParseAndVerify(rawChain(newChain), f.root.Bundle(), at); err != nil {
		t.Fatalf("new SVID: %v", err)
	}
	if _, _, err := x509svid.ParseAndVerify(rawChain(oldChain), f.root.Bundle(), at); err != nil {
		t.Fatalf("SVID from before the rotation: %v", err)
	}
	// The JWT bundle still holds the old key next to the new one.
	keys := f.issuer.JWTAuthorities()
	if _, ok := keys[kid(t, oldJWT)]; !ok || len(keys) != 2 {
		t.Fatalf("JWT authorities after rotation = %d keys, old key kept: %v", len(keys), ok)
	}
}

func kid(t *testing.T, token string) string {
	t.Helper()
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	return jws.Signatures[0].Header.KeyID
}

func TestRotationFailureKeepsCurrentCA(t *testing.T) {
	fail := false
	var root *spiffetest.Root
	f := newFixture(t, func(c *issuer.Config) {
		mint := c.MintCA
		c.MintCA = func(ctx context.Context, k crypto.Signer, ttl time.Duration) ([]*x509.Certificate, error) {
			if fail {
				return nil, errors.New("upstream down")
			}
			return mint(ctx, k, ttl)
		}
	})
	root = f.root
	fail = true
	ctx := context.Background()
	csr := spiffetest.NewCSR(t, spiffetest.NewKey(t))

	f.clock.Advance(13 * time.Hour)
	chain, err := f.issuer.SignCSR(ctx, csr, runID, f.clock.Now().Add(time.Hour))
	if err != nil {
		t.Fatalf("signing failed while the current CA is still valid: %v", err)
	}
	if _, _, err := x509svid.ParseAndVerify(rawChain(chain), root.Bundle(), x509svid.WithTime(f.clock.Now())); err != nil {
		t.Fatal(err)
	}

	f.clock.Advance(11*time.Hour - 5*time.Minute) // 5 minutes before the CA expires
	if _, err := f.issuer.SignCSR(ctx, csr, runID, f.clock.Now().Add(time.Hour)); err == nil {
		t.Fatal("signing went on with a CA too close to expiry to cover an SVID")
	}
}

func TestMintJWTSVID(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	token, err := f.issuer.MintJWTSVID(ctx, runID, "spiffe://example.org/tools/github", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// go-spiffe checks expiry against the wall clock, so this test reads
	// the claims without validation; TestMintJWTSVIDValidates validates.
	jws, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	if h := jws.Headers[0]; h.KeyID == "" || h.Algorithm != "ES256" {
		t.Fatalf("header kid %q alg %q, want a kid and ES256", h.KeyID, h.Algorithm)
	}
	var claims jwt.Claims
	if err := jws.UnsafeClaimsWithoutVerification(&claims); err != nil {
		t.Fatal(err)
	}
	// The one-hour TTL request is capped at the configured 5 minutes.
	if !claims.Expiry.Time().Equal(start.Add(5*time.Minute)) || len(claims.Audience) != 1 || claims.Subject != runID.String() {
		t.Fatalf("claims: exp %s aud %v sub %s", claims.Expiry.Time(), claims.Audience, claims.Subject)
	}

	if _, err := f.issuer.MintJWTSVID(ctx, runID, "", 0); err == nil {
		t.Fatal("minted a JWT-SVID with no audience")
	}
}

func TestMintJWTSVIDValidates(t *testing.T) {
	clock := spiffetest.NewClock(time.Now())
	root := spiffetest.NewRoot(t, td, clock)
	iss, err := issuer.New(context.Background(), issuer.Config{
		TrustDomain: td, SVIDTTL: time.Minute, JWTTTL: time.Minute, SigningTTL: time.Hour,
		MintCA: root.MintCA, Now: clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	token, err := iss.MintJWTSVID(context.Background(), runID, "aud", 0)
	if err != nil {
		t.Fatal(err)
	}
	svid, err := jwtsvid.ParseAndValidate(token, iss.JWTBundle(), []string{"aud"})
	if err != nil {
		t.Fatalf("go-spiffe rejects the JWT-SVID: %v", err)
	}
	if svid.ID != runID {
		t.Fatalf("subject %s, want %s", svid.ID, runID)
	}
	if _, err := jwtsvid.ParseAndValidate(token, iss.JWTBundle(), []string{"other"}); err == nil {
		t.Fatal("go-spiffe accepted the wrong audience")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	_, err := issuer.New(context.Background(), issuer.Config{})
	if err == nil {
		t.Fatal("New accepted an empty config")
	}
	for _, want := range []string{"trust domain", "TTL", "minter"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestNewRejectsUnusableMintedCA(t *testing.T) {
	clock := spiffetest.NewClock(start)
	root := spiffetest.NewRoot(t, td, clock)
	other := spiffetest.NewKey(t)
	_, err := issuer.New(context.Background(), issuer.Config{
		TrustDomain: td, SVIDTTL: time.Minute, JWTTTL: time.Minute, SigningTTL: time.Hour, Now: clock.Now,
		MintCA: func(ctx context.Context, _ crypto.Signer, ttl time.Duration) ([]*x509.Certificate, error) {
			return root.MintCA(ctx, other, ttl) // certifies the wrong key
		},
	})
	if err == nil || !strings.Contains(err.Error(), "does not certify") {
		t.Fatalf("error = %v, want a key mismatch", err)
	}
}

func TestSlowRotationDoesNotBlockSigning(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	calls := 0
	f := newFixture(t, func(c *issuer.Config) {
		mint := c.MintCA
		c.MintCA = func(ctx context.Context, k crypto.Signer, ttl time.Duration) ([]*x509.Certificate, error) {
			calls++
			if calls > 1 { // the first call is New's; later ones are rotations
				close(entered)
				<-release
			}
			return mint(ctx, k, ttl)
		}
	})
	ctx := context.Background()
	csr := spiffetest.NewCSR(t, spiffetest.NewKey(t))
	f.clock.Advance(13 * time.Hour)

	rotated := make(chan error, 1)
	go func() {
		_, err := f.issuer.SignCSR(ctx, csr, runID, f.clock.Now().Add(time.Hour))
		rotated <- err
	}()
	<-entered

	// While the rotation is stuck in the minter, signing goes on with the
	// current CA, which has 11 hours left.
	done := make(chan error, 1)
	go func() {
		_, err := f.issuer.SignCSR(ctx, csr, runID, f.clock.Now().Add(time.Hour))
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("signing waited for a rotation although the current CA was still good")
	}
	close(release)
	if err := <-rotated; err != nil {
		t.Fatal(err)
	}
}
