package bridge

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agentauth/agentauth/agentauth/control/api"
)

// Credentials supply the run's X.509-SVID and the bundle that verifies the
// gateway. Both are read on every TLS handshake, so renewals take effect
// without reconnecting by hand.
type Credentials interface {
	x509svid.Source
	x509bundle.Source
}

// Signer turns a CSR into an SVID. Enroll is the first exchange (with the
// run's bootstrap token); Renew authenticates with the current SVID.
type Signer interface {
	Enroll(ctx context.Context, csrPEM string) (api.SVID, error)
	Renew(ctx context.Context, csrPEM string, current Credentials) (api.SVID, error)
}

// Renewing is Credentials that generates a fresh P-256 key in memory for
// every SVID, obtains the SVID from a Signer, and renews it at half of
// its lifetime. The key never leaves the process.
type Renewing struct {
	signer Signer
	log    *slog.Logger

	mu     sync.RWMutex
	svid   *x509svid.SVID
	bundle *x509bundle.Bundle
}

// NewRenewing enrolls once with signer and returns the credentials. Call
// Run to keep them renewed.
func NewRenewing(ctx context.Context, signer Signer, log *slog.Logger) (*Renewing, error) {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r := &Renewing{signer: signer, log: log}
	if err := r.refresh(ctx, false); err != nil {
		return nil, err
	}
	return r, nil
}

// GetX509SVID returns the current SVID.
func (r *Renewing) GetX509SVID() (*x509svid.SVID, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.svid, nil
}

// GetX509BundleForTrustDomain returns the bundle of the run's trust domain.
func (r *Renewing) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if td != r.bundle.TrustDomain() {
		return nil, fmt.Errorf("bridge: no bundle for trust domain %q", td)
	}
	return r.bundle, nil
}

// Run renews the SVID at half of its remaining lifetime until ctx ends,
// retrying failures every few seconds while the old SVID is still valid.
func (r *Renewing) Run(ctx context.Context) {
	for {
		wait := r.renewIn()
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if err := r.refresh(ctx, true); err != nil {
			r.log.Warn("SVID renewal failed; retrying", "error", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(3 * time.Second):
			}
			continue
		}
		r.log.Info("SVID renewed", "spiffe_id", r.svid.ID.String())
	}
}

func (r *Renewing) renewIn() time.Duration {
	r.mu.RLock()
	defer r.mu.RUnlock()
	leaf := r.svid.Certificates[0]
	return time.Until(leaf.NotAfter) / 2
}

func (r *Renewing) refresh(ctx context.Context, renew bool) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("bridge: generate key: %w", err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return fmt.Errorf("bridge: create CSR: %w", err)
	}
	csrPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	var got api.SVID
	if renew {
		got, err = r.signer.Renew(ctx, csrPEM, r)
	} else {
		got, err = r.signer.Enroll(ctx, csrPEM)
	}
	if err != nil {
		return err
	}
	return r.install(got, key)
}

func (r *Renewing) install(got api.SVID, key *ecdsa.PrivateKey) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	svid, err := x509svid.Parse([]byte(got.CertChainPEM), keyPEM)
	if err != nil {
		return fmt.Errorf("bridge: SVID from the control API is invalid: %w", err)
	}
	bundle, err := x509bundle.Parse(svid.ID.TrustDomain(), []byte(got.BundlePEM))
	if err != nil {
		return fmt.Errorf("bridge: trust bundle from the control API is invalid: %w", err)
	}
	r.mu.Lock()
	r.svid, r.bundle = svid, bundle
	r.mu.Unlock()
	return nil
}

// ControlSigner obtains SVIDs from the control API's TLS listener: it
// exchanges the run's bootstrap token once, then renews over mTLS.
type ControlSigner struct {
	// URL is the control API base, such as https://127.0.0.1:8444.
	URL string
	// BootstrapToken is spent by Enroll; never log it.
	BootstrapToken string
	// Bundle verifies the control API's certificate at enrollment, before
	// the run holds a bundle of its own.
	Bundle *x509bundle.Bundle
	// ServerID is the SPIFFE ID the control API presents (the gateway's);
	// its SVID names no host, so it is checked by ID, not by host name.
	ServerID spiffeid.ID
}

// Enroll exchanges the bootstrap token and CSR for the run's first SVID.
func (c *ControlSigner) Enroll(ctx context.Context, csrPEM string) (api.SVID, error) {
	if c.BootstrapToken == "" {
		return api.SVID{}, errors.New("bridge: no bootstrap token; set AGENTAUTH_BOOTSTRAP_TOKEN to the token printed when the run was started")
	}
	if c.Bundle == nil || c.ServerID.IsZero() {
		return api.SVID{}, errors.New("bridge: the trust bundle and the control API's SPIFFE ID are required to enroll")
	}
	cfg := tlsconfig.TLSClientConfig(c.Bundle, tlsconfig.AuthorizeID(c.ServerID))
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	return c.post(ctx, hc, "/v1/svid/exchange", api.ExchangeRequest{BootstrapToken: c.BootstrapToken, CSR: csrPEM})
}

// Renew presents the current SVID and a new CSR.
func (c *ControlSigner) Renew(ctx context.Context, csrPEM string, current Credentials) (api.SVID, error) {
	cfg := tlsconfig.MTLSClientConfig(current, current, tlsconfig.AuthorizeID(c.ServerID))
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	return c.post(ctx, hc, "/v1/svid/renew", api.RenewRequest{CSR: csrPEM})
}

func (c *ControlSigner) post(ctx context.Context, hc *http.Client, path string, body any) (api.SVID, error) {
	raw, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL+path, bytes.NewReader(raw))
	if err != nil {
		return api.SVID{}, fmt.Errorf("bridge: control API URL %q: %w", c.URL, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return api.SVID{}, fmt.Errorf("bridge: control API %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		var e api.Error
		_ = json.Unmarshal(data, &e)
		return api.SVID{}, fmt.Errorf("bridge: control API %s answered %d: %s", path, resp.StatusCode, e.Message)
	}
	var svid api.SVID
	if err := json.Unmarshal(data, &svid); err != nil {
		return api.SVID{}, fmt.Errorf("bridge: control API %s: %w", path, err)
	}
	return svid, nil
}
