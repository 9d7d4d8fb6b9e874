package ca

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agentauth/agentauth/spiffe/identity"
	"github.com/agentauth/agentauth/spiffe/issuer"
)

// Config configures the embedded CA.
type Config struct {
	// Dir is the folder of the root key and certificate; it is created
	// with mode 0700 when missing.
	Dir         string
	TrustDomain spiffeid.TrustDomain
	SVIDTTL     time.Duration // lifetime of run and gateway X.509-SVIDs
	JWTTTL      time.Duration // maximum lifetime of a JWT-SVID
	SigningTTL  time.Duration // lifetime of each signing CA under the root
	RootTTL     time.Duration // lifetime of a newly created root
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Logger is silent when nil.
	Logger *slog.Logger
}

// CA is the embedded certificate authority. It is safe for concurrent use.
type CA struct {
	cfg    Config
	root   *root
	bundle *x509bundle.Bundle
	issuer *issuer.Issuer
	jwt    *jwtKeyStore // public JWT keys of this and earlier processes

	mu      sync.Mutex
	own     *x509svid.SVID // the gateway's SVID
	renewAt time.Time
}

// Open loads the root from cfg.Dir, creating it on first start, and makes
// the first signing CA and the gateway's own SVID.
func Open(ctx context.Context, cfg Config) (*CA, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}

	r, created, err := loadOrCreateRoot(cfg.Dir, cfg.TrustDomain, cfg.RootTTL, cfg.Now())
	if err != nil {
		return nil, err
	}
	logRoot(ctx, cfg, r, created)

	jwtKeys, err := loadJWTKeys(cfg.Dir, cfg.Now)
	if err != nil {
		return nil, err
	}
	c := &CA{
		cfg:    cfg,
		root:   r,
		bundle: x509bundle.FromX509Authorities(cfg.TrustDomain, []*x509.Certificate{r.cert}),
		jwt:    jwtKeys,
	}
	// Signing keys live only in memory. X.509-SVIDs outlive a restart
	// because they carry their signing CA; JWT-SVIDs do because the public
	// JWT keys are kept in the CA folder.
	c.issuer, err = issuer.New(ctx, issuer.Config{
		TrustDomain:   cfg.TrustDomain,
		SVIDTTL:       cfg.SVIDTTL,
		JWTTTL:        cfg.JWTTTL,
		SigningTTL:    cfg.SigningTTL,
		MintCA:        c.mintSigningCA,
		PublishJWTKey: jwtKeys.add,
		Now:           cfg.Now,
		Logger:        cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	if _, err := c.GetX509SVID(); err != nil {
		return nil, err
	}
	return c, nil
}

func (cfg *Config) check() error {
	var errs []error
	if cfg.Dir == "" {
		errs = append(errs, errors.New("ca: state folder is empty; set state_dir"))
	}
	if cfg.TrustDomain.IsZero() {
		errs = append(errs, errors.New("ca: trust domain is empty; set trust_domain"))
	}
	if cfg.RootTTL <= 0 {
		errs = append(errs, fmt.Errorf("ca: root TTL %v must be positive", cfg.RootTTL))
	}
	if cfg.SVIDTTL > cfg.SigningTTL/2 {
		errs = append(errs, fmt.Errorf("ca: SVID TTL %v must be at most half of the signing TTL %v, "+
			"so that a rotated signing CA outlives the SVIDs it signed", cfg.SVIDTTL, cfg.SigningTTL))
	}
	return errors.Join(errs...)
}

func logRoot(ctx context.Context, cfg Config, r *root, created bool) {
	msg := "loaded root CA"
	if created {
		msg = "created root CA"
	}
	cfg.Logger.InfoContext(ctx, msg, "dir", cfg.Dir, "trust_domain", cfg.TrustDomain.Name(),
		"expires", r.cert.NotAfter, "key_file", filepath.Join(cfg.Dir, rootKeyFile))
}

// mintSigningCA certifies key as a signing CA under the root, valid for ttl
// but never past the root. Path length 0 lets it sign only leaves.
func (c *CA) mintSigningCA(_ context.Context, key crypto.Signer, ttl time.Duration) ([]*x509.Certificate, error) {
	serial, err := issuer.SerialNumber()
	if err != nil {
		return nil, err
	}

	now := c.cfg.Now()
	start := now.Add(-backdate)
	if start.Before(c.root.cert.NotBefore) {
		start = c.root.cert.NotBefore
	}
	end := now.Add(ttl)
	if end.After(c.root.cert.NotAfter) {
		end = c.root.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"agentauth"}, CommonName: "agentauth signing CA"},
		NotBefore:             start,
		NotAfter:              end,
		URIs:                  []*url.URL{c.cfg.TrustDomain.ID().URL()},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}

	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.root.cert, key.Public(), c.root.key)
	if err != nil {
		return nil, fmt.Errorf("ca: sign signing CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return []*x509.Certificate{cert}, nil
}

// TrustDomain returns the CA's trust domain.
func (c *CA) TrustDomain() spiffeid.TrustDomain {
	return c.cfg.TrustDomain
}

// Root returns the root certificate, the one X.509 authority of the bundle.
func (c *CA) Root() *x509.Certificate {
	return c.root.cert
}

// GetX509SVID returns the gateway's own X.509-SVID, spiffe://<td>/agentauth/gateway.
// Once half of its lifetime has passed it signs a new one with a new key,
// so TLS configurations that call it per handshake follow the renewal. If
// renewal fails while the current SVID is still valid, that one is
// returned and the failure logged.
func (c *CA) GetX509SVID() (*x509svid.SVID, error) {
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.own != nil && now.Before(c.renewAt) {
		return c.own, nil
	}

	svid, err := c.issuer.NewX509SVID(context.Background(), identity.GatewayID(c.cfg.TrustDomain))
	if err != nil {
		if c.own != nil && now.Before(c.own.Certificates[0].NotAfter) {
			c.cfg.Logger.Warn("gateway SVID renewal failed; keeping the current one", "error", err)
			return c.own, nil
		}
		return nil, fmt.Errorf("ca: gateway SVID: %w", err)
	}
	leaf := svid.Certificates[0]
	c.own, c.renewAt = svid, leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore)/2)
	return svid, nil
}

// GetX509BundleForTrustDomain returns the bundle holding the root when td
// is the CA's trust domain.
func (c *CA) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	if td != c.cfg.TrustDomain {
		return nil, fmt.Errorf("ca: no X.509 bundle for trust domain %q; only %q is served", td, c.cfg.TrustDomain)
	}
	return c.bundle, nil
}

// GetJWTBundleForTrustDomain returns the JWT keys of td that have not
// expired, when td is the CA's trust domain: the keys of this process and
// the public keys that earlier processes recorded.
func (c *CA) GetJWTBundleForTrustDomain(td spiffeid.TrustDomain) (*jwtbundle.Bundle, error) {
	if td != c.cfg.TrustDomain {
		return nil, fmt.Errorf("ca: no JWT bundle for trust domain %q; only %q is served", td, c.cfg.TrustDomain)
	}
	b := c.issuer.JWTBundle()
	for kid, key := range c.jwt.authorities() {
		if !b.HasJWTAuthority(kid) {
			_ = b.AddJWTAuthority(kid, key) // fails only for an empty kid
		}
	}
	return b, nil
}

// SignRunCSR signs an X.509-SVID for run id from a CSR (see csr.Check for
// what is rejected). id must be a run ID of the CA's trust domain. The SVID
// lives for the configured SVID TTL but never past notAfter, the run's
// expiry. It returns the SVID followed by the signing CA certificate.
func (c *CA) SignRunCSR(ctx context.Context, csrDER []byte, id spiffeid.ID, notAfter time.Time) ([]*x509.Certificate, error) {
	if _, err := identity.ParseRun(id); err != nil {
		return nil, err
	}
	if notAfter.IsZero() {
		return nil, fmt.Errorf("ca: no expiry given for run %q; pass the run's expiry", id)
	}
	return c.issuer.SignCSR(ctx, csrDER, id, notAfter)
}

// SignToolCSR signs an X.509-SVID for the tool server named server,
// spiffe://<td>/tools/<server>, from a CSR (see csr.Check), living for the
// configured SVID TTL. A tool server that calls the gateway back presents
// it; runsvid.Source keeps it renewed.
func (c *CA) SignToolCSR(ctx context.Context, csrDER []byte, server string) ([]*x509.Certificate, error) {
	id, err := identity.ToolID(c.cfg.TrustDomain, server)
	if err != nil {
		return nil, err
	}
	return c.issuer.SignCSR(ctx, csrDER, id, time.Time{})
}

// MintJWTSVID mints an ES256 JWT-SVID for id (any workload of the trust
// domain) with one audience, valid for ttl capped at the configured JWT
// TTL (zero means that TTL).
func (c *CA) MintJWTSVID(ctx context.Context, id spiffeid.ID, audience string, ttl time.Duration) (string, error) {
	return c.issuer.MintJWTSVID(ctx, id, audience, ttl)
}

// Close releases nothing today; it exists so the CA satisfies the same
// interface as SPIRE mode, whose sources hold connections.
func (c *CA) Close() error {
	return nil
}
