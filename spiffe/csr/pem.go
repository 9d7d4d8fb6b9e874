package csr

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// pemType is the PEM block type of a PKCS #10 CSR (RFC 7468).
const pemType = "CERTIFICATE REQUEST"

// Create returns a DER CSR for key with an empty subject and no SANs, the
// form Check accepts for any run. Agents call it with their run key.
func Create(key crypto.Signer) ([]byte, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, fmt.Errorf("csr: create request: %w", err)
	}
	return der, nil
}

// EncodePEM returns der as one PEM "CERTIFICATE REQUEST" block.
func EncodePEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: der})
}

// DecodePEM returns the DER bytes of the one "CERTIFICATE REQUEST" block in
// data. It rejects input over twice MaxSize, other block types, headers,
// text around the block and a second block. Pass the result to Check.
func DecodePEM(data []byte) ([]byte, error) {
	if len(data) > 2*MaxSize {
		return nil, fmt.Errorf("csr: PEM input is %d bytes; the limit is %d", len(data), 2*MaxSize)
	}
	block, rest := pem.Decode(data)
	switch {
	case block == nil:
		return nil, errors.New("csr: input contains no PEM block; send a PEM \"CERTIFICATE REQUEST\"")
	case block.Type != pemType:
		return nil, fmt.Errorf("csr: PEM block is %q; send a \"CERTIFICATE REQUEST\"", block.Type)
	case len(block.Headers) > 0:
		return nil, errors.New("csr: PEM block has headers; send a plain \"CERTIFICATE REQUEST\"")
	case len(bytes.TrimSpace(rest)) > 0:
		return nil, errors.New("csr: input continues after the PEM block; send exactly one CSR")
	case !bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN")) || bytes.Count(data, []byte("-----BEGIN")) != 1:
		// pem.Decode skips text, broken blocks included, before a block.
		return nil, errors.New("csr: input has text before the PEM block; send exactly one CSR")
	}
	return block.Bytes, nil
}
