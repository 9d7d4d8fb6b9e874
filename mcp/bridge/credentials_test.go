package bridge

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agentauth/agentauth/agentauth/control/api"
	"github.com/agentauth/agentauth/spiffe/ca"
)

// controlAPI stands in for the control API's two SVID endpoints, signing
// with the embedded CA: one bootstrap token, usable once, and renewal for
// a client that presents its current SVID.
func controlAPI(t *testing.T, authority *ca.CA, id spiffeid.ID, token string) *httptest.Server {
	used := false
	sign := func(w http.ResponseWriter, csrPEM string) {
		block, _ := pem.Decode([]byte(csrPEM))
		if block == nil {
			http.Error(w, `{"code":"invalid_request","message":"no CSR"}`, http.StatusBadRequest)
			return
		}
		svid, err := (&caSigner{ca: authority, id: id}).sign(context.Background(), csrPEM)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_ = json.NewEncoder(w).Encode(svid)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/svid/exchange", func(w http.ResponseWriter, r *http.Request) {
		var req api.ExchangeRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		if req.BootstrapToken != token || used {
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(api.Error{Code: "bootstrap_invalid", Message: "the bootstrap token is unknown, used or expired"})
			return
		}
		used = true
		sign(w, req.CSR)
	})
	mux.HandleFunc("POST /v1/svid/renew", func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(api.Error{Code: "unauthenticated", Message: "present the run's SVID"})
			return
		}
		var req api.RenewRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		sign(w, req.CSR)
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	own, err := authority.GetX509SVID()
	must(t, err)
	cert := tls.Certificate{PrivateKey: own.PrivateKey}
	for _, c := range own.Certificates {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func TestControlSignerEnrollsAndRenews(t *testing.T) {
	ctx := context.Background()
	authority, err := ca.Open(ctx, ca.Config{Dir: t.TempDir(), TrustDomain: td,
		SVIDTTL: 10 * time.Minute, JWTTTL: 5 * time.Minute, SigningTTL: time.Hour, RootTTL: 24 * time.Hour})
	must(t, err)
	t.Cleanup(func() { _ = authority.Close() })
	id := spiffeid.RequireFromString("spiffe://example.org/agents/researcher/runs/01CONTROL")
	srv := controlAPI(t, authority, id, "aabt_secret")
	bundle, err := authority.GetX509BundleForTrustDomain(td)
	must(t, err)
	gw := spiffeid.RequireFromString("spiffe://example.org/agentauth/gateway")
	signer := &ControlSigner{URL: srv.URL, BootstrapToken: "aabt_secret", Bundle: bundle, ServerID: gw}
	creds, err := NewRenewing(ctx, signer, nil)
	if err != nil {
		t.Fatalf("enroll: %v", err)
	}
	first, _ := creds.GetX509SVID()
	if first.ID != id {
		t.Errorf("SVID names %s, want %s", first.ID, id)
	}
	must(t, creds.refresh(ctx, true))
	second, _ := creds.GetX509SVID()
	if second.Certificates[0].SerialNumber.Cmp(first.Certificates[0].SerialNumber) == 0 {
		t.Error("renewal returned the same certificate")
	}

	_, err = NewRenewing(ctx, signer, nil)
	if err == nil || !strings.Contains(err.Error(), "used or expired") {
		t.Errorf("second enrollment with the same token: %v", err)
	}
	_, err = NewRenewing(ctx, &ControlSigner{URL: srv.URL, Bundle: bundle, ServerID: gw}, nil)
	if err == nil || !strings.Contains(err.Error(), "AGENTAUTH_BOOTSTRAP_TOKEN") {
		t.Errorf("enrollment without a token: %v", err)
	}
}

func TestControlSignerRefusesAnImpostor(t *testing.T) {
	ctx := context.Background()
	authority, err := ca.Open(ctx, ca.Config{Dir: t.TempDir(), TrustDomain: td,
		SVIDTTL: 10 * time.Minute, JWTTTL: 5 * time.Minute, SigningTTL: time.Hour, RootTTL: 24 * time.Hour})
	must(t, err)
	t.Cleanup(func() { _ = authority.Close() })
	id := spiffeid.RequireFromString("spiffe://example.org/agents/researcher/runs/01CONTROL")
	srv := controlAPI(t, authority, id, "aabt_secret")
	bundle, _ := authority.GetX509BundleForTrustDomain(td)
	other := spiffeid.RequireFromString("spiffe://example.org/tools/fs")
	_, err = NewRenewing(ctx, &ControlSigner{URL: srv.URL, BootstrapToken: "aabt_secret", Bundle: bundle, ServerID: other}, nil)
	if err == nil {
		t.Fatal("enrolled with a server that is not the expected SPIFFE ID")
	}
}
