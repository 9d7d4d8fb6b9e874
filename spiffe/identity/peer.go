package identity

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// PeerID returns the SPIFFE ID in the leaf certificate that the peer of a
// TLS connection presented. It reads the certificate only: the connection's
// tls.Config must have verified the chain, as the configurations built by
// go-spiffe's tlsconfig package do, before this ID can be trusted.
func PeerID(cs *tls.ConnectionState) (spiffeid.ID, error) {
	if cs == nil {
		return spiffeid.ID{}, errors.New("identity: connection is not TLS; connect with mTLS and a run SVID")
	}
	if !cs.HandshakeComplete {
		return spiffeid.ID{}, errors.New("identity: TLS handshake is not complete")
	}
	if len(cs.PeerCertificates) == 0 {
		return spiffeid.ID{}, errors.New("identity: peer presented no certificate; connect with mTLS and a run SVID")
	}
	id, err := x509svid.IDFromCert(cs.PeerCertificates[0])
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("identity: peer certificate contains no SPIFFE ID: %w", err)
	}
	return id, nil
}

// PeerIDFromRequest returns PeerID of the connection that carried r.
func PeerIDFromRequest(r *http.Request) (spiffeid.ID, error) {
	return PeerID(r.TLS)
}
