package spiffe

import (
	"context"
	"crypto/x509"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agentauth/agentauth/spiffe/ca"
	"github.com/agentauth/agentauth/spiffe/spire"
)

// Authority is the SPIFFE certificate authority the gateway uses, the same
// whether the embedded CA or SPIRE is behind it.
//
// As an x509svid.Source it returns the gateway's own SVID
// (spiffe://<td>/agentauth/gateway in the embedded CA; whatever SPIRE
// registered in SPIRE mode), renewed before it expires; as bundle sources it
// returns the trust domain's X.509 roots and JWT keys. Pass it to
// ServerTLSConfig and ClientTLSConfig, or to go-spiffe's tlsconfig package,
// which call it on every handshake, so listeners follow renewals without a
// restart.
type Authority interface {
	x509svid.Source
	x509bundle.Source
	jwtbundle.Source

	// TrustDomain returns the trust domain of every SVID the authority signs.
	TrustDomain() spiffeid.TrustDomain

	// SignRunCSR signs an X.509-SVID for the run ID id from a DER-encoded
	// PKCS #10 CSR and returns it followed by its signing chain (without
	// the root). The CSR must contain an ECDSA P-256 key, verify, and claim
	// no identity but id. The SVID expires after the configured SVID TTL
	// but never after notAfter, the run's expiry.
	SignRunCSR(ctx context.Context, csrDER []byte, id spiffeid.ID, notAfter time.Time) ([]*x509.Certificate, error)

	// SignToolCSR signs an X.509-SVID for the tool server named server,
	// spiffe://<td>/tools/<server>, from a CSR with the same checks, living
	// for the configured SVID TTL. Tool servers that call the gateway back
	// present it.
	SignToolCSR(ctx context.Context, csrDER []byte, server string) ([]*x509.Certificate, error)

	// MintJWTSVID mints an ES256 JWT-SVID for id with exactly one
	// audience, living ttl capped at the configured JWT TTL (zero or less
	// means that TTL).
	MintJWTSVID(ctx context.Context, id spiffeid.ID, audience string, ttl time.Duration) (string, error)

	// Close stops background work and closes connections.
	Close() error
}

var (
	_ Authority = (*ca.CA)(nil)
	_ Authority = (*spire.Authority)(nil)
)
