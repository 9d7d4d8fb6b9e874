package spiffe

import (
	"crypto/tls"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
)

// ServerTLSConfig returns an mTLS server configuration that presents the
// authority's own SVID and accepts a client presenting any valid X.509-SVID
// of the authority's trust domain. Read the client's ID with
// identity.PeerIDFromRequest. The SVID and the bundle are fetched on every
// handshake, so renewals need no restart.
func ServerTLSConfig(a Authority) *tls.Config {
	cfg := tlsconfig.MTLSServerConfig(a, a, tlsconfig.AuthorizeMemberOf(a.TrustDomain()))
	cfg.MinVersion = tls.VersionTLS13
	return cfg
}

// ClientTLSConfig returns an mTLS client configuration that presents the
// authority's own SVID and accepts only a server whose SVID names server.
func ClientTLSConfig(a Authority, server spiffeid.ID) *tls.Config {
	cfg := tlsconfig.MTLSClientConfig(a, a, tlsconfig.AuthorizeID(server))
	cfg.MinVersion = tls.VersionTLS13
	return cfg
}

// MemberClientTLSConfig is ClientTLSConfig accepting any server SVID of
// the authority's trust domain, for tool servers whose SPIFFE ID is not
// configured.
func MemberClientTLSConfig(a Authority) *tls.Config {
	cfg := tlsconfig.MTLSClientConfig(a, a, tlsconfig.AuthorizeMemberOf(a.TrustDomain()))
	cfg.MinVersion = tls.VersionTLS13
	return cfg
}
