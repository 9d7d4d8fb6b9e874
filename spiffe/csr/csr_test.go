package csr

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

var want = spiffeid.RequireFromString("spiffe://example.org/agents/researcher/runs/01J0000000000000000000000A")

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func makeCSR(t testing.TB, key crypto.Signer, tmpl *x509.CertificateRequest) []byte {
	t.Helper()
	if tmpl == nil {
		tmpl = &x509.CertificateRequest{}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestCheckAccepts(t *testing.T) {
	key := newKey(t)
	cases := map[string]*x509.CertificateRequest{
		"empty":            {},
		"assigned URI SAN": {URIs: []*url.URL{want.URL()}},
		"assigned as CN":   {Subject: pkix.Name{CommonName: want.String()}, URIs: []*url.URL{want.URL()}},
		"SHA-384":          {SignatureAlgorithm: x509.ECDSAWithSHA384},
		"non-CA basic constraints": {ExtraExtensions: []pkix.Extension{
			{Id: oidBasicConstraints, Value: mustMarshal(t, struct{}{})},
		}},
	}
	for name, tmpl := range cases {
		t.Run(name, func(t *testing.T) {
			pub, err := Check(makeCSR(t, key, tmpl), want)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if !pub.Equal(key.Public()) {
				t.Fatal("returned key is not the CSR's key")
			}
		})
	}
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCheckRejects(t *testing.T) {
	p256 := newKey(t)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	other := spiffeid.RequireFromString("spiffe://example.org/agents/researcher/runs/OTHER")
	foreign := spiffeid.RequireFromString("spiffe://evil.example/agents/researcher/runs/01J0000000000000000000000A")

	badSig := makeCSR(t, p256, nil)
	badSig[len(badSig)-3] ^= 0xff

	caReq := struct {
		IsCA bool
	}{true}

	cases := []struct {
		name string
		der  []byte
		want string
	}{
		{"empty input", nil, "empty"},
		{"oversized input", make([]byte, MaxSize+1), "limit"},
		{"garbage", []byte("not a csr"), "PKCS #10"},
		{"trailing data", append(makeCSR(t, p256, nil), 0), "PKCS #10"},
		{"RSA key", makeCSR(t, rsaKey, nil), "RSA-2048 key is not accepted"},
		{"P-384 key", makeCSR(t, p384, nil), "P-384 is not accepted"},
		{"P-224 key", makeCSR(t, p224, nil), "P-224 is not accepted"},
		{"Ed25519 key", makeCSR(t, edKey, nil), "Ed25519 key is not accepted"},
		{"bad signature", badSig, "signature"},
		{"other run URI SAN", makeCSR(t, p256, &x509.CertificateRequest{URIs: []*url.URL{other.URL()}}), "claims another identity"},
		{"other trust domain URI SAN", makeCSR(t, p256, &x509.CertificateRequest{URIs: []*url.URL{foreign.URL()}}), "claims another identity"},
		{"two URI SANs", makeCSR(t, p256, &x509.CertificateRequest{URIs: []*url.URL{want.URL(), other.URL()}}), "2 URI SANs"},
		{"DNS SAN", makeCSR(t, p256, &x509.CertificateRequest{DNSNames: []string{"gateway.example.org"}}), "DNS SAN"},
		{"email SAN", makeCSR(t, p256, &x509.CertificateRequest{EmailAddresses: []string{"alice@example.org"}}), "email SAN"},
		{"IP SAN", makeCSR(t, p256, &x509.CertificateRequest{IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}), "IP SAN"},
		{"subject CN of another ID", makeCSR(t, p256, &x509.CertificateRequest{Subject: pkix.Name{CommonName: other.String()}}), "subject"},
		{"subject with organization", makeCSR(t, p256, &x509.CertificateRequest{
			Subject: pkix.Name{CommonName: want.String(), Organization: []string{"admins"}}}), "subject"},
		{"CA request", makeCSR(t, p256, &x509.CertificateRequest{ExtraExtensions: []pkix.Extension{
			{Id: oidBasicConstraints, Critical: true, Value: mustMarshal(t, caReq)}}}), "CA certificate"},
		{"malformed basic constraints", makeCSR(t, p256, &x509.CertificateRequest{ExtraExtensions: []pkix.Extension{
			{Id: oidBasicConstraints, Value: []byte{0x01}}}}), "malformed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pub, err := Check(tc.der, want)
			if err == nil {
				t.Fatalf("Check accepted the request and returned %v", pub)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %q, want it to mention %q", err, tc.want)
			}
		})
	}
}

func FuzzCheck(f *testing.F) {
	key := newKey(f)
	f.Add(makeCSR(f, key, nil))
	f.Add(makeCSR(f, key, &x509.CertificateRequest{URIs: []*url.URL{want.URL()}}))
	f.Add(makeCSR(f, key, &x509.CertificateRequest{DNSNames: []string{"a.example"}}))
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		pub, err := Check(der, want)
		if err != nil {
			return
		}
		// Whatever Check accepts must be a verified P-256 request that names
		// no identity but the assigned one.
		req, perr := x509.ParseCertificateRequest(der)
		if perr != nil {
			t.Fatalf("Check accepted input that does not parse: %v", perr)
		}
		if req.CheckSignature() != nil || pub.Curve != elliptic.P256() {
			t.Fatal("Check accepted a request with a bad signature or curve")
		}
		if len(req.DNSNames)+len(req.EmailAddresses)+len(req.IPAddresses) > 0 {
			t.Fatal("Check accepted a request with non-URI SANs")
		}
		for _, u := range req.URIs {
			if u.String() != want.String() {
				t.Fatalf("Check accepted URI SAN %q", u)
			}
		}
	})
}
