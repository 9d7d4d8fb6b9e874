package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"

	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agentauth/agentauth/spiffe/identity"
)

// JWTSVIDs returns a JWTValidator that checks JWT-SVIDs against bundles.
func JWTSVIDs(bundles jwtbundle.Source) JWTValidator { return jwtSVIDs{bundles} }

type jwtSVIDs struct{ bundles jwtbundle.Source }

// ValidateJWTSVID checks signature, expiry and the single audience.
func (j jwtSVIDs) ValidateJWTSVID(_ context.Context, token, audience string) (spiffeid.ID, error) {
	svid, err := identity.ValidateJWTSVID(token, j.bundles, audience)
	if err != nil {
		return spiffeid.ID{}, err
	}
	return svid.ID, nil
}

// AllowBearer returns a copy of an mTLS server configuration (such as
// spiffe.ServerTLSConfig) that still verifies every client certificate
// presented but also lets clients without one connect, so that they can
// authenticate with a JWT-SVID bearer token instead. A connection with
// neither credential is refused by the gateway, never served.
func AllowBearer(cfg *tls.Config) *tls.Config {
	out := cfg.Clone()
	verify := cfg.VerifyPeerCertificate
	switch cfg.ClientAuth {
	case tls.RequireAndVerifyClientCert:
		out.ClientAuth = tls.VerifyClientCertIfGiven
	case tls.RequireAnyClientCert:
		out.ClientAuth = tls.RequestClientCert
	}
	if verify != nil {
		out.VerifyPeerCertificate = func(raw [][]byte, chains [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return nil
			}
			return verify(raw, chains)
		}
	}
	return out
}
