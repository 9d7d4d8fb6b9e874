package spiffe

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/agentauth/agentauth/spiffe/identity"
)

// RenewRunCSR signs a new X.509-SVID for the run that presented current,
// its still valid SVID chain (leaf first, as in
// tls.ConnectionState.PeerCertificates). The run ID is read from the
// verified chain, never from the request, so a run can renew only its own
// identity. notAfter is the run's expiry from the store.
func RenewRunCSR(ctx context.Context, a Authority, current []*x509.Certificate, csrDER []byte, notAfter time.Time) ([]*x509.Certificate, error) {
	if len(current) == 0 {
		return nil, errors.New("spiffe: renewal needs the run's current SVID; connect with mTLS")
	}
	id, err := identity.VerifyX509SVID(current, a, time.Now())
	if err != nil {
		return nil, fmt.Errorf("spiffe: renewal: %w", err)
	}
	if !id.MemberOf(a.TrustDomain()) {
		return nil, fmt.Errorf("spiffe: renewal: %q is outside trust domain %q", id, a.TrustDomain())
	}
	if _, err := identity.ParseRun(id); err != nil {
		return nil, fmt.Errorf("spiffe: renewal: %w", err)
	}
	return a.SignRunCSR(ctx, csrDER, id, notAfter)
}
