package identity

import (
	"crypto/x509"
	"fmt"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// VerifyX509SVID checks an X.509-SVID chain (leaf first) against bundles at
// time now and returns the leaf's SPIFFE ID. The chain must lead to a root
// of the leaf's trust domain. Every certificate must be valid at now,
// neither expired nor not yet valid. The leaf must be a non-CA certificate
// with one SPIFFE ID URI SAN.
func VerifyX509SVID(chain []*x509.Certificate, bundles x509bundle.Source, now time.Time) (spiffeid.ID, error) {
	id, _, err := x509svid.Verify(chain, bundles, x509svid.WithTime(now))
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("identity: invalid X.509-SVID: %w", err)
	}
	if id.Path() == "" {
		return spiffeid.ID{}, fmt.Errorf("identity: X.509-SVID ID %q has an empty path", id)
	}
	return id, nil
}
