package spiffe

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"
)

// X509BundlePEM returns the X.509 roots of the authority's trust domain as
// PEM certificates, the form NODE_EXTRA_CA_CERTS and most TLS clients read.
func X509BundlePEM(a Authority) ([]byte, error) {
	b, err := a.GetX509BundleForTrustDomain(a.TrustDomain())
	if err != nil {
		return nil, fmt.Errorf("spiffe: %w", err)
	}
	return b.Marshal()
}

// ChainPEM encodes an SVID chain, leaf first, as PEM certificates: the
// form in which the gateway hands a run its SVID.
func ChainPEM(chain []*x509.Certificate) []byte {
	var out bytes.Buffer
	for _, c := range chain {
		_ = pem.Encode(&out, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}) // a bytes.Buffer never fails
	}
	return out.Bytes()
}

// Ready returns nil when the authority can serve TLS at now: its own SVID
// is valid and its trust domain has an X.509 bundle. The admin listener's
// readiness check calls it.
func Ready(a Authority, now time.Time) error {
	svid, err := a.GetX509SVID()
	if err != nil {
		return fmt.Errorf("spiffe: no gateway SVID: %w", err)
	}
	if len(svid.Certificates) == 0 {
		return errors.New("spiffe: gateway SVID has no certificate")
	}
	if leaf := svid.Certificates[0]; now.Before(leaf.NotBefore) || !now.Before(leaf.NotAfter) {
		return fmt.Errorf("spiffe: gateway SVID %q is valid from %s to %s, not now", svid.ID,
			leaf.NotBefore.Format(time.RFC3339), leaf.NotAfter.Format(time.RFC3339))
	}
	if _, err := a.GetX509BundleForTrustDomain(a.TrustDomain()); err != nil {
		return fmt.Errorf("spiffe: no X.509 bundle: %w", err)
	}
	return nil
}
