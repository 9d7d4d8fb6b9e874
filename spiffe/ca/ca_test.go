package ca_test

import (
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agentauth/agentauth/spiffe/ca"
	"github.com/agentauth/agentauth/spiffe/identity"
	"github.com/agentauth/agentauth/spiffe/internal/spiffetest"
)

var td = spiffeid.RequireTrustDomainFromString("example.org")

func config(dir string, clock *spiffetest.Clock) ca.Config {
	cfg := ca.Config{
		Dir:         dir,
		TrustDomain: td,
		SVIDTTL:     10 * time.Minute,
		JWTTTL:      5 * time.Minute,
		SigningTTL:  24 * time.Hour,
		RootTTL:     10 * 365 * 24 * time.Hour,
	}
	if clock != nil {
		cfg.Now = clock.Now
	}
	return cfg
}

func open(t *testing.T, cfg ca.Config) *ca.CA {
	t.Helper()
	c, err := ca.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func rawChain(chain []*x509.Certificate) [][]byte {
	raw := make([][]byte, len(chain))
	for i, c := range chain {
		raw[i] = c.Raw
	}
	return raw
}

func TestOpenCreatesRootWithPrivateKeyFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "ca")
	c := open(t, config(dir, nil))

	info, err := os.Stat(filepath.Join(dir, "root-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Fatalf("root key mode = %#o, want 0600", perm)
	}
	dirInfo, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := dirInfo.Mode().Perm(); perm != 0o700 {
		t.Fatalf("CA folder mode = %#o, want 0700", perm)
	}
	root := c.Root()
	if !root.IsCA || len(root.URIs) != 1 || root.URIs[0].String() != "spiffe://example.org" {
		t.Fatalf("root: CA %v, URIs %v", root.IsCA, root.URIs)
	}
}

func TestRestartReloadsSameRoot(t *testing.T) {
	dir := t.TempDir()
	first := open(t, config(dir, nil))
	chain, err := first.SignRunCSR(context.Background(), spiffetest.NewCSR(t, spiffetest.NewKey(t)),
		mustRunID(t), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	first.Close()

	second := open(t, config(dir, nil))
	if !second.Root().Equal(first.Root()) {
		t.Fatal("restart created a new root")
	}
	// An SVID from before the restart still verifies against the bundle.
	if _, _, err := x509svid.ParseAndVerify(rawChain(chain), second); err != nil {
		t.Fatalf("SVID from before the restart: %v", err)
	}
}

func mustRunID(t *testing.T) spiffeid.ID {
	t.Helper()
	id, err := identity.RunID(td, "researcher", identity.NewRunID())
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestOpenRefusesReadableKey(t *testing.T) {
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644, 0o660} {
		dir := t.TempDir()
		open(t, config(dir, nil)).Close()
		keyPath := filepath.Join(dir, "root-key.pem")
		if err := os.Chmod(keyPath, mode); err != nil {
			t.Fatal(err)
		}
		_, err := ca.Open(context.Background(), config(dir, nil))
		if err == nil {
			t.Fatalf("Open accepted a root key with mode %#o", mode)
		}
		if !strings.Contains(err.Error(), "chmod 600") || !strings.Contains(err.Error(), keyPath) {
			t.Fatalf("error %q does not name the file and the fix", err)
		}
	}
}

func TestOpenRefusesBadState(t *testing.T) {
	t.Run("key without certificate", func(t *testing.T) {
		dir := t.TempDir()
		open(t, config(dir, nil)).Close()
		os.Remove(filepath.Join(dir, "root-cert.pem"))
		if _, err := ca.Open(context.Background(), config(dir, nil)); err == nil || !strings.Contains(err.Error(), "only one of") {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("other trust domain", func(t *testing.T) {
		dir := t.TempDir()
		open(t, config(dir, nil)).Close()
		cfg := config(dir, nil)
		cfg.TrustDomain = spiffeid.RequireTrustDomainFromString("other.org")
		if _, err := ca.Open(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "not trust domain") {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("symlinked key", func(t *testing.T) {
		dir := t.TempDir()
		open(t, config(dir, nil)).Close()
		keyPath := filepath.Join(dir, "root-key.pem")
		os.Rename(keyPath, keyPath+".real")
		os.Symlink(keyPath+".real", keyPath)
		if _, err := ca.Open(context.Background(), config(dir, nil)); err == nil || !strings.Contains(err.Error(), "regular file") {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("garbage key", func(t *testing.T) {
		dir := t.TempDir()
		open(t, config(dir, nil)).Close()
		os.WriteFile(filepath.Join(dir, "root-key.pem"), []byte("junk"), 0o600)
		if _, err := ca.Open(context.Background(), config(dir, nil)); err == nil || !strings.Contains(err.Error(), "PRIVATE KEY") {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("expired root", func(t *testing.T) {
		dir := t.TempDir()
		clock := spiffetest.NewClock(time.Now())
		cfg := config(dir, clock)
		cfg.RootTTL = 48 * time.Hour
		open(t, cfg).Close()
		clock.Advance(49 * time.Hour)
		if _, err := ca.Open(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "expired") {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("SVID TTL over half the signing TTL", func(t *testing.T) {
		cfg := config(t.TempDir(), nil)
		cfg.SVIDTTL = 13 * time.Hour
		if _, err := ca.Open(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "half") {
			t.Fatalf("error = %v", err)
		}
	})
}

func TestSignRunCSRRoundTrip(t *testing.T) {
	c := open(t, config(t.TempDir(), nil))
	id := mustRunID(t)
	chain, err := c.SignRunCSR(context.Background(), spiffetest.NewCSR(t, spiffetest.NewKey(t), id.URL()), id, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	got, chains, err := x509svid.ParseAndVerify(rawChain(chain), c)
	if err != nil {
		t.Fatalf("go-spiffe rejects the run SVID: %v", err)
	}
	if got != id || !chains[0][len(chains[0])-1].Equal(c.Root()) {
		t.Fatalf("SVID names %s and chains to %s", got, chains[0][len(chains[0])-1].Subject)
	}
}

func TestSignRunCSRRejectsNonRunIDs(t *testing.T) {
	c := open(t, config(t.TempDir(), nil))
	csr := spiffetest.NewCSR(t, spiffetest.NewKey(t))
	for _, id := range []spiffeid.ID{
		identity.GatewayID(td),
		spiffeid.RequireFromString("spiffe://example.org/tools/github"),
		spiffeid.RequireFromString("spiffe://other.org/agents/a/runs/r1"),
	} {
		if _, err := c.SignRunCSR(context.Background(), csr, id, time.Now().Add(time.Hour)); err == nil {
			t.Errorf("SignRunCSR signed %s", id)
		}
	}
	if _, err := c.SignRunCSR(context.Background(), csr, mustRunID(t), time.Time{}); err == nil {
		t.Error("SignRunCSR signed without a run expiry")
	}
}

func TestJWTSVIDRoundTrip(t *testing.T) {
	c := open(t, config(t.TempDir(), nil))
	id := mustRunID(t)
	token, err := c.MintJWTSVID(context.Background(), id, "spiffe://example.org/tools/github", 0)
	if err != nil {
		t.Fatal(err)
	}
	svid, err := jwtsvid.ParseAndValidate(token, c, []string{"spiffe://example.org/tools/github"})
	if err != nil {
		t.Fatalf("go-spiffe rejects the JWT-SVID: %v", err)
	}
	if svid.ID != id {
		t.Fatalf("subject %s, want %s", svid.ID, id)
	}
	if _, err := identity.ValidateJWTSVID(token, c, ""); err == nil {
		t.Fatal("ValidateJWTSVID accepted an empty audience")
	}
}

func TestGatewaySVIDRenews(t *testing.T) {
	clock := spiffetest.NewClock(time.Now())
	c := open(t, config(t.TempDir(), clock))
	first, err := c.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	if first.ID != identity.GatewayID(td) {
		t.Fatalf("gateway SVID names %s", first.ID)
	}
	if _, _, err := x509svid.Verify(first.Certificates, c, x509svid.WithTime(clock.Now())); err != nil {
		t.Fatal(err)
	}

	clock.Advance(4 * time.Minute)
	if same, _ := c.GetX509SVID(); same != first {
		t.Fatal("gateway SVID renewed before half of its lifetime")
	}
	clock.Advance(2 * time.Minute)
	second, err := c.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	if second == first || second.PrivateKey == first.PrivateKey {
		t.Fatal("gateway SVID was not renewed with a new key after half of its lifetime")
	}
	if _, _, err := x509svid.Verify(second.Certificates, c, x509svid.WithTime(clock.Now())); err != nil {
		t.Fatal(err)
	}
}

func TestBundlesServeOnlyOwnTrustDomain(t *testing.T) {
	c := open(t, config(t.TempDir(), nil))
	other := spiffeid.RequireTrustDomainFromString("other.org")
	if _, err := c.GetX509BundleForTrustDomain(other); err == nil {
		t.Error("X.509 bundle served for another trust domain")
	}
	if _, err := c.GetJWTBundleForTrustDomain(other); err == nil {
		t.Error("JWT bundle served for another trust domain")
	}
	b, err := c.GetJWTBundleForTrustDomain(td)
	if err != nil || len(b.JWTAuthorities()) != 1 {
		t.Fatalf("JWT bundle: %v, %v", b, err)
	}
}

func TestSigningCARotationKeepsOlderSVIDsVerifying(t *testing.T) {
	clock := spiffetest.NewClock(time.Now())
	c := open(t, config(t.TempDir(), clock))
	ctx := context.Background()
	sign := func() []*x509.Certificate {
		t.Helper()
		chain, err := c.SignRunCSR(ctx, spiffetest.NewCSR(t, spiffetest.NewKey(t)), mustRunID(t), clock.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return chain
	}

	clock.Advance(12*time.Hour - time.Minute) // just before half of the 24 h signing TTL
	before := sign()
	clock.Advance(2 * time.Minute)
	after := sign()
	if before[1].Equal(after[1]) {
		t.Fatal("signing CA did not rotate")
	}
	for name, chain := range map[string][]*x509.Certificate{"before": before, "after": after} {
		if _, _, err := x509svid.Verify(chain, c, x509svid.WithTime(clock.Now())); err != nil {
			t.Errorf("SVID signed %s the rotation: %v", name, err)
		}
	}
}

func TestSignToolCSR(t *testing.T) {
	c := open(t, config(t.TempDir(), nil))
	chain, err := c.SignToolCSR(context.Background(), spiffetest.NewCSR(t, spiffetest.NewKey(t)), "github")
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := x509svid.Verify(chain, c)
	if err != nil || id.String() != "spiffe://example.org/tools/github" {
		t.Fatalf("tool SVID names %s: %v", id, err)
	}
	claimsRun := spiffetest.NewCSR(t, spiffetest.NewKey(t), mustRunID(t).URL())
	for name, tc := range map[string]struct {
		csr    []byte
		server string
	}{
		"bad server name":          {spiffetest.NewCSR(t, spiffetest.NewKey(t)), "../agentauth/gateway"},
		"CSR claiming another one": {claimsRun, "github"},
	} {
		if _, err := c.SignToolCSR(context.Background(), tc.csr, tc.server); err == nil {
			t.Errorf("%s: SignToolCSR signed it", name)
		}
	}
}

func TestJWTSVIDsOutliveRestart(t *testing.T) {
	dir := t.TempDir()
	first := open(t, config(dir, nil))
	id := mustRunID(t)
	token, err := first.MintJWTSVID(context.Background(), id, "tools", 0)
	if err != nil {
		t.Fatal(err)
	}
	first.Close()

	second := open(t, config(dir, nil))
	if _, err := identity.ValidateJWTSVID(token, second, "tools"); err != nil {
		t.Fatalf("JWT-SVID minted before the restart: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "jwt-authorities.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "PRIVATE") || strings.Contains(string(data), `"d"`) {
		t.Fatalf("JWT key file holds private material:\n%s", data)
	}
}

func TestJWTKeyFileDropsExpiredKeys(t *testing.T) {
	dir := t.TempDir()
	clock := spiffetest.NewClock(time.Now())
	cfg := config(dir, clock)
	open(t, cfg).Close() // records its JWT key, valid for the 24 h signing TTL

	clock.Advance(25 * time.Hour) // past the 24 h key lifetime
	second := open(t, cfg)
	b, err := second.GetJWTBundleForTrustDomain(td)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(b.JWTAuthorities()); n != 1 {
		t.Fatalf("bundle has %d JWT keys after the first process's key expired, want 1", n)
	}
}

func TestOpenRejectsCorruptJWTKeyFile(t *testing.T) {
	dir := t.TempDir()
	open(t, config(dir, nil)).Close()
	for name, data := range map[string]string{
		"not JSON":      "{",
		"bad key bytes": `[{"kid":"k","public_key":"AAAA","expires":"2999-01-01T00:00:00Z"}]`,
	} {
		os.WriteFile(filepath.Join(dir, "jwt-authorities.json"), []byte(data), 0o644)
		if _, err := ca.Open(context.Background(), config(dir, nil)); err == nil {
			t.Errorf("%s: Open accepted the JWT key file", name)
		}
	}
}
