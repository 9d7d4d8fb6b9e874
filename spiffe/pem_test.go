package spiffe_test

import (
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	"github.com/agentauth/agentauth/spiffe"
)

func TestX509BundlePEM(t *testing.T) {
	a := openEmbedded(t)
	data, err := spiffe.X509BundlePEM(a)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		t.Fatalf("bundle PEM holds no certificate:\n%s", data)
	}
	run := runSVID(t, a)
	_, err = run.Certificates[0].Verify(x509.VerifyOptions{
		Roots:         pool,
		Intermediates: poolOf(run.Certificates[1:]),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		t.Fatalf("a plain TLS client with the PEM bundle rejects a run SVID: %v", err)
	}
}

func poolOf(certs []*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

func TestChainPEM(t *testing.T) {
	a := openEmbedded(t)
	run := runSVID(t, a)
	data := spiffe.ChainPEM(run.Certificates)
	var n int
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil || !c.Equal(run.Certificates[n]) {
			t.Fatalf("block %d is not certificate %d of the chain: %v", n, n, err)
		}
		n++
	}
	if n != len(run.Certificates) {
		t.Fatalf("PEM holds %d certificates, want %d", n, len(run.Certificates))
	}
}

func TestReady(t *testing.T) {
	a := openEmbedded(t)
	if err := spiffe.Ready(a, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := spiffe.Ready(a, time.Now().Add(time.Hour)); err == nil {
		t.Fatal("Ready accepted a time after the gateway SVID expires")
	}
}
