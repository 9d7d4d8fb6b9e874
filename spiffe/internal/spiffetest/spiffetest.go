// Package spiffetest holds helpers for the tests of agentauth's SPIFFE
// packages: a settable clock, key and CSR makers, and a throwaway root CA.
package spiffetest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Clock is a clock that tests move by hand. It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock set to start.
func NewClock(start time.Time) *Clock {
	return &Clock{now: start}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// NewKey returns a fresh ECDSA P-256 key.
func NewKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// NewCSR returns a DER CSR signed by key with the given URI SANs.
func NewCSR(t testing.TB, key crypto.Signer, uris ...*url.URL) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{URIs: uris}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// Root is a throwaway self-signed root CA for a trust domain.
type Root struct {
	TD    spiffeid.TrustDomain
	Key   *ecdsa.PrivateKey
	Cert  *x509.Certificate
	Clock *Clock
}

// NewRoot returns a root valid for a year from clock's time.
func NewRoot(t testing.TB, td spiffeid.TrustDomain, clock *Clock) *Root {
	t.Helper()
	key := NewKey(t)
	now := clock.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test root"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		URIs:                  []*url.URL{td.ID().URL()},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &Root{TD: td, Key: key, Cert: cert, Clock: clock}
}

// Bundle returns an X.509 bundle holding the root.
func (r *Root) Bundle() *x509bundle.Bundle {
	return x509bundle.FromX509Authorities(r.TD, []*x509.Certificate{r.Cert})
}

// MintCA signs key as a signing CA valid for ttl from the clock's time; it
// is an issuer.CAMinter.
func (r *Root) MintCA(_ context.Context, key crypto.Signer, ttl time.Duration) ([]*x509.Certificate, error) {
	now := r.Clock.Now()
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "test signing CA"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(ttl),
		URIs:                  []*url.URL{r.TD.ID().URL()},
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, r.Cert, key.Public(), r.Key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return []*x509.Certificate{cert}, nil
}
