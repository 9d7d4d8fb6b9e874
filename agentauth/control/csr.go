package control

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// maxCSRBytes bounds a CSR; a P-256 request is a few hundred bytes.
const maxCSRBytes = 8 << 10

// ParseCSR reads a PKCS #10 request in PEM or base64 DER, checks its
// signature and requires an ECDSA P-256 key. It returns the DER bytes.
func ParseCSR(text string) ([]byte, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, errors.New("csr is empty; send a PEM CERTIFICATE REQUEST for the run's key")
	}
	if len(text) > maxCSRBytes {
		return nil, fmt.Errorf("csr is over %d bytes", maxCSRBytes)
	}
	der, err := csrDER(text)
	if err != nil {
		return nil, err
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("csr is not a valid PKCS #10 request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("csr signature is invalid: %w", err)
	}
	k, ok := csr.PublicKey.(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P256() {
		return nil, errors.New("csr key is not ECDSA P-256; generate a P-256 key")
	}
	return der, nil
}

func csrDER(text string) ([]byte, error) {
	if strings.HasPrefix(text, "-----BEGIN") {
		b, rest := pem.Decode([]byte(text))
		if b == nil || b.Type != "CERTIFICATE REQUEST" {
			return nil, errors.New("csr PEM has no CERTIFICATE REQUEST block")
		}
		if len(strings.TrimSpace(string(rest))) != 0 {
			return nil, errors.New("csr PEM has data after the request")
		}
		return b.Bytes, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawURLEncoding} {
		if der, err := enc.DecodeString(text); err == nil {
			return der, nil
		}
	}
	return nil, errors.New("csr is neither PEM nor base64 DER")
}
