package agentauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agentauth/agentauth/agentauth/control/api"
)

// Run is an agent run that this process acts as. It holds the run's key in
// memory only and keeps its X.509-SVID fresh until Close.
type Run struct {
	enroll  Enrollment
	td      spiffeid.TrustDomain
	gateway spiffeid.ID
	log     *slog.Logger

	mu      sync.RWMutex
	svid    *x509svid.SVID
	gotAt   time.Time // when svid arrived; its NotBefore may be backdated
	expires time.Time // the run's expiry; zero until known
	err     error     // why renewal stopped; nil while it runs
	bundle  *x509bundle.Bundle
	renewed chan struct{}

	cancel context.CancelFunc
	done   chan struct{}
	// ownBundle reports that the trust bundle file was written by this package and
	// is removed on Close.
	ownBundle bool
}

// Option adjusts Join.
type Option func(*joinOptions)

type joinOptions struct {
	log *slog.Logger
}

// WithLogger makes the run log its renewals and their failures.
func WithLogger(l *slog.Logger) Option { return func(o *joinOptions) { o.log = l } }

// Join joins the run named in the environment (see EnrollmentFromEnv).
func Join(ctx context.Context, opts ...Option) (*Run, error) {
	e, err := EnrollmentFromEnv()
	if err != nil {
		return nil, err
	}
	return JoinEnrollment(ctx, e, opts...)
}

// JoinEnrollment generates the run's key, exchanges the bootstrap token
// for its SVID and starts renewing it in the background.
func JoinEnrollment(ctx context.Context, e Enrollment, opts ...Option) (*Run, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	o := joinOptions{log: discardLogger()}
	for _, opt := range opts {
		opt(&o)
	}
	roots, td, err := loadBundle(e)
	if err != nil {
		return nil, err
	}
	r := newRun(e, td, x509bundle.FromX509Authorities(td, roots), o)

	plain := NewControl(e.Control, &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: tlsconfig.TLSClientConfig(r, tlsconfig.AuthorizeID(r.gateway))}})
	key, csr, err := newKeyAndCSR()
	if err != nil {
		return nil, err
	}
	svid, err := plain.exchange(ctx, e.BootstrapToken, csr)
	if err != nil {
		return nil, fmt.Errorf("agentauth: exchange bootstrap token: %w", err)
	}
	if err := r.install(key, svid); err != nil {
		return nil, err
	}
	r.startRenewal()
	return r, nil
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newRun(e Enrollment, td spiffeid.TrustDomain, b *x509bundle.Bundle, o joinOptions) *Run {
	r := &Run{enroll: e, td: td, log: o.log, bundle: b, expires: e.ExpiresAt,
		renewed: make(chan struct{}, 1), done: make(chan struct{})}
	r.gateway, _ = spiffeid.FromSegments(td, "agentauth", "gateway")
	return r
}

func (r *Run) startRenewal() {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go r.renewLoop(ctx)
}

// loadBundle reads the trust bundle file. The trust domain comes from the
// run's SPIFFE ID or else from the root's URI SAN.
func loadBundle(e Enrollment) ([]*x509.Certificate, spiffeid.TrustDomain, error) {
	data, err := os.ReadFile(e.TrustBundle)
	if err != nil {
		return nil, spiffeid.TrustDomain{}, fmt.Errorf("agentauth: read trust bundle: %w", err)
	}
	roots, err := parseCerts(data)
	if err != nil || len(roots) == 0 {
		return nil, spiffeid.TrustDomain{}, fmt.Errorf("agentauth: trust bundle %s contains no PEM certificate; point %s at the gateway's bundle", e.TrustBundle, EnvTrustBundle)
	}
	if e.SPIFFEID != "" {
		id, err := spiffeid.FromString(e.SPIFFEID)
		if err != nil {
			return nil, spiffeid.TrustDomain{}, fmt.Errorf("agentauth: invalid %s: %w", EnvSPIFFEID, err)
		}
		return roots, id.TrustDomain(), nil
	}
	for _, u := range roots[0].URIs {
		if id, err := spiffeid.FromURI(u); err == nil {
			return roots, id.TrustDomain(), nil
		}
	}
	return nil, spiffeid.TrustDomain{}, fmt.Errorf("agentauth: cannot tell the trust domain; set %s", EnvSPIFFEID)
}

func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return out, nil
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
}

// newKeyAndCSR makes a P-256 key in memory and a CSR with no names: the
// gateway decides the SPIFFE ID.
func newKeyAndCSR() (*ecdsa.PrivateKey, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, "", err
	}
	return key, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), nil
}

func (r *Run) install(key *ecdsa.PrivateKey, s api.SVID) error {
	certs, err := parseCerts([]byte(s.CertChainPEM))
	if err != nil || len(certs) == 0 {
		return errors.New("agentauth: the gateway returned no certificate chain")
	}
	id, err := x509svid.IDFromCert(certs[0])
	if err != nil {
		return fmt.Errorf("agentauth: the gateway returned an invalid SVID: %w", err)
	}
	if _, _, err := x509svid.Verify(certs, r); err != nil {
		return fmt.Errorf("agentauth: the returned SVID does not chain to the trust bundle: %w", err)
	}
	r.mu.Lock()
	r.svid = &x509svid.SVID{ID: id, Certificates: certs, PrivateKey: key}
	r.gotAt = time.Now()
	r.mu.Unlock()
	return nil
}

// GetX509SVID returns the run's current SVID. Run is an x509svid.Source.
func (r *Run) GetX509SVID() (*x509svid.SVID, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.svid == nil {
		return nil, errors.New("agentauth: the run has no SVID yet")
	}
	return r.svid, nil
}

// GetX509BundleForTrustDomain returns the gateway's trust bundle. Run is an
// x509bundle.Source.
func (r *Run) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	if td != r.td {
		return nil, fmt.Errorf("agentauth: no bundle for trust domain %q", td)
	}
	return r.bundle, nil
}

// ID returns the run's id.
func (r *Run) ID() string {
	s, _ := r.GetX509SVID()
	return runIDOf(s.ID)
}

// runIDOf reads the run id from spiffe://<td>/agents/<agent>/runs/<id>.
func runIDOf(id spiffeid.ID) string {
	parts := strings.Split(id.Path(), "/")
	if len(parts) != 5 || parts[1] != "agents" || parts[3] != "runs" {
		return ""
	}
	return parts[4]
}

// SPIFFEID returns the run's SPIFFE ID.
func (r *Run) SPIFFEID() spiffeid.ID {
	s, _ := r.GetX509SVID()
	return s.ID
}

// TLSConfig returns an mTLS client configuration that presents the run's
// current SVID and accepts only the gateway.
func (r *Run) TLSConfig() *tls.Config {
	return tlsconfig.MTLSClientConfig(r, r, tlsconfig.AuthorizeID(r.gateway))
}

// HTTPClient returns an HTTP client for the gateway with the run's mTLS.
func (r *Run) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: r.TLSConfig(),
		ForceAttemptHTTP2: true}}
}

// Control returns a control API client that authenticates as the run.
func (r *Run) Control() *Control {
	hc := r.HTTPClient()
	hc.Timeout = 30 * time.Second
	return NewControl(r.enroll.Control, hc)
}

// Enrollment returns the run's gateway and control URLs and trust bundle
// path, without the bootstrap token, which is already used.
func (r *Run) Enrollment() Enrollment {
	e := r.enroll
	e.BootstrapToken = ""
	return e
}

// Close stops renewal; Err then returns ErrRunClosed unless renewal had
// already ended. The SVID stays valid until it expires.
func (r *Run) Close() error {
	if r.cancel != nil {
		r.cancel()
		<-r.done
		r.cancel = nil
	}
	if r.ownBundle {
		r.ownBundle = false
		return os.RemoveAll(filepath.Dir(r.enroll.TrustBundle))
	}
	return nil
}
