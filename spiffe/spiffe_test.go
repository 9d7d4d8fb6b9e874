package spiffe_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agentauth/agentauth/agentauth/config"
	"github.com/agentauth/agentauth/spiffe"
	"github.com/agentauth/agentauth/spiffe/ca"
	"github.com/agentauth/agentauth/spiffe/identity"
	"github.com/agentauth/agentauth/spiffe/internal/spiffetest"
)

func openEmbedded(t *testing.T) spiffe.Authority {
	t.Helper()
	cfg := config.Default()
	cfg.StateDir = t.TempDir()
	cfg.TrustDomain = "example.org"
	a, err := spiffe.Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// runSVID has the embedded authority sign a CSR for a new run, the way an
// agent gets its identity, and returns the SVID with the run's key.
func runSVID(t *testing.T, a spiffe.Authority) *x509svid.SVID {
	t.Helper()
	id, err := identity.RunID(a.TrustDomain(), "researcher", identity.NewRunID())
	if err != nil {
		t.Fatal(err)
	}
	key := spiffetest.NewKey(t)
	chain, err := a.SignRunCSR(context.Background(), spiffetest.NewCSR(t, key), id, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return &x509svid.SVID{ID: id, Certificates: chain, PrivateKey: key}
}

// serve starts an HTTPS server with ServerTLSConfig on 127.0.0.1 whose
// handler writes the peer's SPIFFE ID.
func serve(t *testing.T, a spiffe.Authority) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", spiffe.ServerTLSConfig(a))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := identity.PeerIDFromRequest(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		io.WriteString(w, id.String())
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "https://" + ln.Addr().String()
}

func get(url string, cfg *tls.Config) (string, error) {
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

func TestMTLSCarriesRunIdentity(t *testing.T) {
	a := openEmbedded(t)
	url := serve(t, a)
	run := runSVID(t, a)

	gateway := identity.GatewayID(a.TrustDomain())
	got, err := get(url, tlsconfig.MTLSClientConfig(run, a, tlsconfig.AuthorizeID(gateway)))
	if err != nil {
		t.Fatal(err)
	}
	if got != run.ID.String() {
		t.Fatalf("server saw peer %q, want %q", got, run.ID)
	}
}

func TestMTLSRejectsClients(t *testing.T) {
	a := openEmbedded(t)
	url := serve(t, a)
	other := openEmbedded(t) // another CA of the same trust domain name
	gateway := identity.GatewayID(a.TrustDomain())

	cases := map[string]*tls.Config{
		"no client certificate": tlsconfig.TLSClientConfig(a, tlsconfig.AuthorizeID(gateway)),
		"SVID from another CA":  tlsconfig.MTLSClientConfig(runSVID(t, other), a, tlsconfig.AuthorizeID(gateway)),
	}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			if body, err := get(url, cfg); err == nil {
				t.Fatalf("server accepted the client and returned %q", body)
			}
		})
	}
}

func TestClientTLSConfigChecksServerID(t *testing.T) {
	a := openEmbedded(t)
	url := serve(t, a)
	tool := spiffeid.RequireFromString("spiffe://example.org/tools/github")
	if _, err := get(url, spiffe.ClientTLSConfig(a, tool)); err == nil {
		t.Fatal("client accepted a server whose SVID names the gateway, not the tool server")
	}
	if _, err := get(url, spiffe.ClientTLSConfig(a, identity.GatewayID(a.TrustDomain()))); err != nil {
		t.Fatalf("client rejected the expected server: %v", err)
	}
	if _, err := get(url, spiffe.MemberClientTLSConfig(a)); err != nil {
		t.Fatalf("client rejected a server of its trust domain: %v", err)
	}
}

func TestPeerIDRejectsPlainConnections(t *testing.T) {
	if _, err := identity.PeerIDFromRequest(&http.Request{}); err == nil {
		t.Fatal("PeerIDFromRequest accepted a request without TLS")
	}
	cs := &tls.ConnectionState{HandshakeComplete: true}
	if _, err := identity.PeerID(cs); err == nil {
		t.Fatal("PeerID accepted a connection without a peer certificate")
	}
}

func TestServerTLSConfigFollowsRenewal(t *testing.T) {
	clock := spiffetest.NewClock(time.Now())
	c, err := ca.Open(context.Background(), ca.Config{
		Dir: t.TempDir(), TrustDomain: spiffeid.RequireTrustDomainFromString("example.org"),
		SVIDTTL: 10 * time.Minute, JWTTTL: time.Minute, SigningTTL: 24 * time.Hour, RootTTL: 48 * time.Hour,
		Now: clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := spiffe.ServerTLSConfig(c)
	first, err := cfg.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(6 * time.Minute)
	second, err := cfg.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(second.Certificate[0], first.Certificate[0]) {
		t.Fatal("the same TLS config kept serving the old gateway SVID after its half-life")
	}
}

func TestRenewRunCSR(t *testing.T) {
	a := openEmbedded(t)
	run := runSVID(t, a)
	key := spiffetest.NewKey(t)

	chain, err := spiffe.RenewRunCSR(context.Background(), a, run.Certificates, spiffetest.NewCSR(t, key), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := x509svid.Verify(chain, a)
	if err != nil || id != run.ID {
		t.Fatalf("renewed SVID names %s (%v), want the same run %s", id, err, run.ID)
	}

	other := openEmbedded(t)
	if _, err := spiffe.RenewRunCSR(context.Background(), a, runSVID(t, other).Certificates,
		spiffetest.NewCSR(t, key), time.Now().Add(time.Hour)); err == nil {
		t.Fatal("renewed an SVID that another CA signed")
	}
	gw, err := a.GetX509SVID()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := spiffe.RenewRunCSR(context.Background(), a, gw.Certificates,
		spiffetest.NewCSR(t, key), time.Now().Add(time.Hour)); err == nil {
		t.Fatal("renewal turned the gateway's SVID into a run SVID")
	}
	if _, err := spiffe.RenewRunCSR(context.Background(), a, nil, spiffetest.NewCSR(t, key), time.Now()); err == nil {
		t.Fatal("renewed without a current SVID")
	}
}

func TestOpenRejectsBadConfig(t *testing.T) {
	cfg := config.Default()
	cfg.StateDir = t.TempDir()
	cfg.TrustDomain = "Not A Domain"
	if _, err := spiffe.Open(context.Background(), cfg, nil); err == nil || !strings.Contains(err.Error(), "trust_domain") {
		t.Fatalf("error = %v", err)
	}

	cfg.TrustDomain = "example.org"
	cfg.SPIRE.Socket = filepath.Join(t.TempDir(), "agent.sock")
	cfg.SPIRE.ServerAddress = "/run/spire/server/api.sock"
	if _, err := spiffe.Open(context.Background(), cfg, nil); err == nil || !strings.Contains(err.Error(), "TCP") {
		t.Fatalf("error = %v", err)
	}
}

func TestOpenSPIREFailsWithinContext(t *testing.T) {
	// A Workload API socket that no agent serves: Open must give up when the
	// context ends instead of hanging.
	cfg := config.Default()
	cfg.TrustDomain = "example.org"
	cfg.SPIRE.Socket = filepath.Join(t.TempDir(), "agent.sock")
	cfg.SPIRE.ServerAddress = "127.0.0.1:1"
	ln, err := net.Listen("unix", cfg.SPIRE.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := spiffe.Open(ctx, cfg, nil); err == nil {
		t.Fatal("Open succeeded without a Workload API")
	}
}
