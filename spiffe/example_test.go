package spiffe_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agentauth/agentauth/agentauth/config"
	"github.com/agentauth/agentauth/spiffe"
	"github.com/agentauth/agentauth/spiffe/identity"
)

// The gateway opens its authority, gives a new run an identity from the
// CSR the agent sent, and mints a JWT-SVID for a tool server.
func Example() {
	stateDir, _ := os.MkdirTemp("", "agentauth-example-")
	defer os.RemoveAll(stateDir)
	cfg := config.Default()
	cfg.StateDir, cfg.TrustDomain = stateDir, "example.org"

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	authority, err := spiffe.Open(ctx, cfg, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer authority.Close()

	// The agent side: a fresh key pair, and a CSR that leaves names out.
	runKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, runKey)

	// The gateway side: a run id it generates, and the run's expiry.
	runID, _ := identity.RunID(authority.TrustDomain(), "researcher", identity.NewRunID())
	chain, err := authority.SignRunCSR(ctx, csr, runID, time.Now().Add(30*time.Minute))
	if err != nil {
		log.Fatal(err)
	}
	id, _, err := x509svid.Verify(chain, authority)
	fmt.Println(id == runID, err)

	token, _ := authority.MintJWTSVID(ctx, runID, "spiffe://example.org/tools/github", 0)
	svid, err := identity.ValidateJWTSVID(token, authority, "spiffe://example.org/tools/github")
	fmt.Println(svid.ID == runID, err)

	// Listeners: spiffe.ServerTLSConfig(authority) for mTLS from runs, and
	// identity.PeerIDFromRequest(r) in handlers to read the run's ID.
	_ = spiffe.ServerTLSConfig(authority)
	// Output:
	// true <nil>
	// true <nil>
}
