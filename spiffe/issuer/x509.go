package issuer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agentauth/agentauth/spiffe/csr"
)

// backdate is how far before now an SVID's validity starts, so that a peer
// whose clock is slightly behind accepts it.
const backdate = 30 * time.Second

// SignCSR checks csrDER against id with csr.Check and signs an X.509-SVID
// for its public key. See SignX509SVID for the lifetime.
func (i *Issuer) SignCSR(ctx context.Context, csrDER []byte, id spiffeid.ID, notAfter time.Time) ([]*x509.Certificate, error) {
	pub, err := csr.Check(csrDER, id)
	if err != nil {
		return nil, err
	}
	return i.SignX509SVID(ctx, pub, id, notAfter)
}

// SignX509SVID signs an X.509-SVID for pub naming id, and returns it
// followed by the signing CA chain. The SVID lives for the configured SVID
// TTL but never past notAfter (a zero notAfter sets no limit) nor past the
// signing CA. It is an ECDSA P-256 leaf with exactly one URI SAN, the
// digitalSignature key usage, the server and client auth extended key
// usages, and no CA rights. Names in the CSR are never copied.
func (i *Issuer) SignX509SVID(ctx context.Context, pub crypto.PublicKey, id spiffeid.ID, notAfter time.Time) ([]*x509.Certificate, error) {
	if err := i.checkSubjectID(id); err != nil {
		return nil, err
	}
	if k, ok := pub.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		return nil, fmt.Errorf("issuer: SVID key for %q is %T; only ECDSA P-256 keys are signed", id, pub)
	}

	now := i.cfg.Now()
	if !notAfter.IsZero() && !notAfter.After(now) {
		return nil, fmt.Errorf("issuer: expiry %s for %q is not in the future", notAfter.Format(time.RFC3339), id)
	}
	g, err := i.current(ctx, now)
	if err != nil {
		return nil, err
	}

	leaf, err := g.signLeaf(pub, id, now, i.cfg.SVIDTTL, notAfter)
	if err != nil {
		return nil, err
	}
	return append([]*x509.Certificate{leaf}, g.chain...), nil
}

// NewX509SVID generates a key pair in this process and signs an X.509-SVID
// for it. The gateway uses it for its own identity; run keys are never made
// here.
func (i *Issuer) NewX509SVID(ctx context.Context, id spiffeid.ID) (*x509svid.SVID, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("issuer: generate key for %q: %w", id, err)
	}
	chain, err := i.SignX509SVID(ctx, key.Public(), id, time.Time{})
	if err != nil {
		return nil, err
	}
	return &x509svid.SVID{ID: id, Certificates: chain, PrivateKey: key}, nil
}

func (i *Issuer) checkSubjectID(id spiffeid.ID) error {
	switch {
	case id.IsZero():
		return errors.New("issuer: SPIFFE ID is empty")
	case !id.MemberOf(i.cfg.TrustDomain):
		return fmt.Errorf("issuer: SPIFFE ID %q is outside trust domain %q", id, i.cfg.TrustDomain)
	case id.Path() == "":
		return fmt.Errorf("issuer: SPIFFE ID %q has an empty path", id)
	}
	return nil
}

func (g *generation) signLeaf(pub crypto.PublicKey, id spiffeid.ID, now time.Time, ttl time.Duration, limit time.Time) (*x509.Certificate, error) {
	ca := g.chain[0]
	end := earliest(now.Add(ttl), limit, ca.NotAfter)
	start := now.Add(-backdate)
	if start.Before(ca.NotBefore) {
		start = ca.NotBefore
	}

	serial, err := SerialNumber()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		NotBefore:             start,
		NotAfter:              end,
		URIs:                  []*url.URL{id.URL()},
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, pub, g.caKey)
	if err != nil {
		return nil, fmt.Errorf("issuer: sign X.509-SVID for %q: %w", id, err)
	}
	return x509.ParseCertificate(der)
}

// SerialNumber returns a random positive 127-bit certificate serial number.
func SerialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("issuer: serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// earliest returns the earliest of t and the non-zero limits.
func earliest(t time.Time, limits ...time.Time) time.Time {
	for _, l := range limits {
		if !l.IsZero() && l.Before(t) {
			t = l
		}
	}
	return t
}
