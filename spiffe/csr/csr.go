// Package csr checks the PKCS #10 certificate signing requests that agent
// runs send for their X.509-SVIDs. The run generates its key pair and sends
// only a CSR, so the gateway never holds a run's private key. Check accepts
// a CSR only when it proves possession of an ECDSA P-256 key and claims no
// identity other than the one the gateway assigned to the run. DecodePEM
// reads a CSR sent as PEM, and Create makes the CSR an agent sends.
package csr

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// MaxSize is the largest DER-encoded CSR, in bytes, that Check reads. A
// P-256 CSR with one URI SAN is about 300 bytes.
const MaxSize = 4 << 10

var (
	oidBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidCommonName       = asn1.ObjectIdentifier{2, 5, 4, 3}
)

// Check parses der as a CSR for the SPIFFE ID want and returns the public
// key it carries. It rejects, with an error naming the fault:
//   - input over MaxSize bytes or that is not one DER-encoded CSR;
//   - a key that is not ECDSA on P-256 (RSA, Ed25519, P-384, ...);
//   - a signature algorithm other than ECDSA with SHA-256/384/512, or a
//     signature that does not verify;
//   - any DNS, email or IP SAN, and any URI SAN other than want;
//   - a subject other than empty or a lone common name equal to want;
//   - a request for a CA certificate.
func Check(der []byte, want spiffeid.ID) (*ecdsa.PublicKey, error) {
	if len(der) > MaxSize {
		return nil, fmt.Errorf("csr: request is %d bytes; the limit is %d", len(der), MaxSize)
	}
	if len(der) == 0 {
		return nil, errors.New("csr: request is empty; send a DER-encoded PKCS #10 CSR")
	}
	req, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("csr: request is not a DER-encoded PKCS #10 CSR: %w", err)
	}

	pub, err := p256Key(req)
	if err != nil {
		return nil, err
	}
	if err := checkSignature(req); err != nil {
		return nil, err
	}
	if err := checkNames(req, want); err != nil {
		return nil, err
	}
	if err := checkExtensions(req); err != nil {
		return nil, err
	}
	return pub, nil
}

func p256Key(req *x509.CertificateRequest) (*ecdsa.PublicKey, error) {
	switch k := req.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("csr: ECDSA curve %s is not accepted; generate a P-256 key", k.Curve.Params().Name)
		}
		return k, nil
	case *rsa.PublicKey:
		return nil, fmt.Errorf("csr: RSA-%d key is not accepted; generate an ECDSA P-256 key", k.N.BitLen())
	case ed25519.PublicKey:
		return nil, errors.New("csr: Ed25519 key is not accepted; generate an ECDSA P-256 key")
	default:
		return nil, fmt.Errorf("csr: %s key is not accepted; generate an ECDSA P-256 key", req.PublicKeyAlgorithm)
	}
}

func checkSignature(req *x509.CertificateRequest) error {
	switch req.SignatureAlgorithm {
	case x509.ECDSAWithSHA256, x509.ECDSAWithSHA384, x509.ECDSAWithSHA512:
	default:
		return fmt.Errorf("csr: signature algorithm %s is not accepted; sign with ECDSA and SHA-256", req.SignatureAlgorithm)
	}
	if err := req.CheckSignature(); err != nil {
		return fmt.Errorf("csr: signature does not verify with the request's key: %w", err)
	}
	return nil
}

// checkNames rejects every name in the request that is not want. The
// issued certificate never copies names from the CSR, but a CSR that
// claims another identity is a sign of a confused or hostile client.
func checkNames(req *x509.CertificateRequest, want spiffeid.ID) error {
	switch {
	case len(req.DNSNames) > 0:
		return fmt.Errorf("csr: DNS SAN %q is not accepted; a run SVID names only %q", req.DNSNames[0], want)
	case len(req.EmailAddresses) > 0:
		return fmt.Errorf("csr: email SAN %q is not accepted; a run SVID names only %q", req.EmailAddresses[0], want)
	case len(req.IPAddresses) > 0:
		return fmt.Errorf("csr: IP SAN %s is not accepted; a run SVID names only %q", req.IPAddresses[0], want)
	case len(req.URIs) > 1:
		return fmt.Errorf("csr: request has %d URI SANs; send none or exactly %q", len(req.URIs), want)
	case len(req.URIs) == 1 && req.URIs[0].String() != want.String():
		return fmt.Errorf("csr: URI SAN %q claims another identity than the assigned %q", req.URIs[0], want)
	}
	return checkSubject(req, want)
}

func checkSubject(req *x509.CertificateRequest, want spiffeid.ID) error {
	if len(req.RawSubject) == 0 || bytes.Equal(req.RawSubject, []byte{0x30, 0x00}) {
		return nil
	}
	names := req.Subject.Names
	if len(names) == 1 && names[0].Type.Equal(oidCommonName) && names[0].Value == want.String() {
		return nil
	}
	return fmt.Errorf("csr: subject %q claims another identity than the assigned %q; leave the subject empty", req.Subject, want)
}

func checkExtensions(req *x509.CertificateRequest) error {
	for _, ext := range req.Extensions {
		if !ext.Id.Equal(oidBasicConstraints) {
			continue
		}
		var bc struct {
			IsCA       bool `asn1:"optional"`
			MaxPathLen int  `asn1:"optional,default:-1"`
		}
		if rest, err := asn1.Unmarshal(ext.Value, &bc); err != nil || len(rest) > 0 {
			return errors.New("csr: basic constraints extension is malformed")
		}
		if bc.IsCA {
			return errors.New("csr: request asks for a CA certificate; a run SVID is never a CA")
		}
	}
	return nil
}
