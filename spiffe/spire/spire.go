package spire

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffegrpc/grpccredentials"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
	bundlev1 "github.com/spiffe/spire-api-sdk/proto/spire/api/server/bundle/v1"
	svidv1 "github.com/spiffe/spire-api-sdk/proto/spire/api/server/svid/v1"
	"github.com/spiffe/spire-api-sdk/proto/spire/api/types"
	"google.golang.org/grpc"

	"github.com/agentauth/agentauth/spiffe/identity"
	"github.com/agentauth/agentauth/spiffe/issuer"
)

// rpcTimeout bounds each call to the SPIRE server.
const rpcTimeout = 30 * time.Second

// Waits between attempts to get the first downstream CA.
const (
	retryMin = 250 * time.Millisecond
	retryMax = 5 * time.Second
)

// Config configures SPIRE mode.
type Config struct {
	// WorkloadSocket is the SPIRE agent's Workload API socket: a path or a
	// unix:// address, as in SPIFFE_ENDPOINT_SOCKET.
	WorkloadSocket string
	// ServerAddress is the SPIRE server API's TCP address, host:port.
	ServerAddress string
	// TrustDomain, when set, must match the trust domain of the SVID the
	// Workload API returns.
	TrustDomain spiffeid.TrustDomain
	SVIDTTL     time.Duration // maximum lifetime of a run X.509-SVID
	JWTTTL      time.Duration // maximum lifetime of a JWT-SVID
	SigningTTL  time.Duration // lifetime requested for each downstream CA
	// Logger is silent when nil.
	Logger *slog.Logger
}

// Authority is the gateway's SPIFFE authority backed by SPIRE.
type Authority struct {
	td     spiffeid.TrustDomain
	x509   *workloadapi.X509Source
	jwt    *workloadapi.JWTSource
	conn   *grpc.ClientConn
	issuer *issuer.Issuer
}

// Open connects to the Workload API, waits for the first SVID and bundles
// (bounded by ctx), and gets the first downstream CA from the SPIRE server.
func Open(ctx context.Context, cfg Config) (_ *Authority, err error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	a := &Authority{}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()

	if err := a.openSources(ctx, cfg); err != nil {
		return nil, err
	}
	creds := grpccredentials.MTLSClientCredentials(a.x509, a.x509, tlsconfig.AuthorizeID(ServerID(a.td)))
	a.conn, err = grpc.NewClient(cfg.ServerAddress, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("spire: server address %q: %w", cfg.ServerAddress, err)
	}
	a.issuer, err = a.newIssuer(ctx, cfg)
	if err != nil {
		return nil, err
	}
	cfg.Logger.InfoContext(ctx, "SPIRE authority ready", "trust_domain", a.td.Name(),
		"workload_socket", cfg.WorkloadSocket, "server", cfg.ServerAddress)
	return a, nil
}

// newIssuer makes the issuer, retrying while the SPIRE server refuses the
// first downstream CA: right after the entry is created the server may not
// yet see the gateway as a downstream workload.
func (a *Authority) newIssuer(ctx context.Context, cfg Config) (*issuer.Issuer, error) {
	icfg := issuer.Config{
		TrustDomain:   a.td,
		SVIDTTL:       cfg.SVIDTTL,
		JWTTTL:        cfg.JWTTTL,
		SigningTTL:    cfg.SigningTTL,
		MintCA:        a.mintDownstreamCA,
		PublishJWTKey: a.publishJWTKey,
		Logger:        cfg.Logger,
	}
	wait := retryMin
	for {
		iss, err := issuer.New(ctx, icfg)
		if err == nil {
			return iss, nil
		}
		cfg.Logger.WarnContext(ctx, "SPIRE downstream CA not ready; retrying", "retry_in", wait, "error", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (gave up: %w)", err, context.Cause(ctx))
		case <-time.After(wait):
		}
		wait = min(2*wait, retryMax)
	}
}

func (cfg *Config) check() error {
	var errs []error
	if cfg.WorkloadSocket == "" {
		errs = append(errs, errors.New("spire: Workload API socket is empty; set spire.socket or SPIFFE_ENDPOINT_SOCKET"))
	}
	switch {
	case cfg.ServerAddress == "":
		errs = append(errs, errors.New("spire: server address is empty; set it to the SPIRE server API's "+
			"host:port, such as 127.0.0.1:8081"))
	case strings.HasPrefix(cfg.ServerAddress, "unix:") || strings.HasPrefix(cfg.ServerAddress, "/"):
		errs = append(errs, fmt.Errorf("spire: server address %q is a Unix socket; the downstream CA API "+
			"authenticates its caller by mTLS, so give the SPIRE server's TCP host:port", cfg.ServerAddress))
	}
	return errors.Join(errs...)
}

func (a *Authority) openSources(ctx context.Context, cfg Config) error {
	client := workloadapi.WithClientOptions(workloadapi.WithAddr(socketAddr(cfg.WorkloadSocket)))
	var err error
	a.x509, err = workloadapi.NewX509Source(ctx, client, workloadapi.WithDefaultX509SVIDPicker(pickGateway))
	if err != nil {
		return fmt.Errorf("spire: X.509 source from %s: %w", cfg.WorkloadSocket, err)
	}
	svid, err := a.x509.GetX509SVID()
	if err != nil {
		return fmt.Errorf("spire: %w", err)
	}
	a.td = svid.ID.TrustDomain()
	if !cfg.TrustDomain.IsZero() && cfg.TrustDomain != a.td {
		return fmt.Errorf("spire: the Workload API SVID %q is in trust domain %q but trust_domain is %q; make them match",
			svid.ID, a.td, cfg.TrustDomain)
	}
	if svid.ID != identity.GatewayID(a.td) {
		cfg.Logger.WarnContext(ctx, "gateway SVID from SPIRE has an unexpected SPIFFE ID",
			"spiffe_id", svid.ID.String(), "expected", identity.GatewayID(a.td).String())
	}

	a.jwt, err = workloadapi.NewJWTSource(ctx, client)
	if err != nil {
		return fmt.Errorf("spire: JWT source from %s: %w", cfg.WorkloadSocket, err)
	}
	return nil
}

// socketAddr turns a socket path into the unix:// address go-spiffe wants.
func socketAddr(s string) string {
	if strings.Contains(s, "://") {
		return s
	}
	return "unix://" + s
}

// pickGateway prefers the gateway's SVID when the entry set hands the
// process more than one.
func pickGateway(svids []*x509svid.SVID) *x509svid.SVID {
	for _, s := range svids {
		if s.ID == identity.GatewayID(s.ID.TrustDomain()) {
			return s
		}
	}
	return svids[0]
}

// ServerID returns the SPIFFE ID of the SPIRE server of td.
func ServerID(td spiffeid.TrustDomain) spiffeid.ID {
	return spiffeid.RequireFromSegments(td, "spire", "server")
}

func (a *Authority) mintDownstreamCA(ctx context.Context, key crypto.Signer, ttl time.Duration) ([]*x509.Certificate, error) {
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, fmt.Errorf("spire: downstream CA request: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	resp, err := svidv1.NewSVIDClient(a.conn).NewDownstreamX509CA(ctx, &svidv1.NewDownstreamX509CARequest{
		Csr:          csr,
		PreferredTtl: int32(ttl / time.Second),
	})
	if err != nil {
		return nil, fmt.Errorf("spire: NewDownstreamX509CA (is the gateway's entry created with -downstream?): %w", err)
	}
	return parseDownstreamChain(resp.CaCertChain, resp.X509Authorities)
}

// parseDownstreamChain parses the CA chain and checks that it leads to one
// of the roots the server returned.
func parseDownstreamChain(rawChain, rawRoots [][]byte) ([]*x509.Certificate, error) {
	chain, err := parseCerts(rawChain)
	if err != nil || len(chain) == 0 {
		return nil, fmt.Errorf("spire: downstream CA chain from the server is unusable: %v", err)
	}
	roots, err := parseCerts(rawRoots)
	if err != nil {
		return nil, fmt.Errorf("spire: X.509 authorities from the server: %w", err)
	}
	opts := x509.VerifyOptions{
		Roots:         x509.NewCertPool(),
		Intermediates: x509.NewCertPool(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}
	for _, r := range roots {
		opts.Roots.AddCert(r)
	}
	for _, c := range chain[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := chain[0].Verify(opts); err != nil {
		return nil, fmt.Errorf("spire: downstream CA does not chain to the server's roots: %w", err)
	}
	return chain, nil
}

func parseCerts(raw [][]byte) ([]*x509.Certificate, error) {
	certs := make([]*x509.Certificate, 0, len(raw))
	for _, der := range raw {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	return certs, nil
}

func (a *Authority) publishJWTKey(ctx context.Context, kid string, key crypto.PublicKey, expires time.Time) error {
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return fmt.Errorf("spire: encode JWT key: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	_, err = bundlev1.NewBundleClient(a.conn).PublishJWTAuthority(ctx, &bundlev1.PublishJWTAuthorityRequest{
		JwtAuthority: &types.JWTKey{PublicKey: der, KeyId: kid, ExpiresAt: expires.Unix()},
	})
	if err != nil {
		return fmt.Errorf("spire: PublishJWTAuthority: %w", err)
	}
	return nil
}

// TrustDomain returns the trust domain of the gateway's SPIRE SVID.
func (a *Authority) TrustDomain() spiffeid.TrustDomain {
	return a.td
}

// GetX509SVID returns the gateway's current SVID from the Workload API.
func (a *Authority) GetX509SVID() (*x509svid.SVID, error) {
	return a.x509.GetX509SVID()
}

// GetX509BundleForTrustDomain returns SPIRE's X.509 bundle for td.
func (a *Authority) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	return a.x509.GetX509BundleForTrustDomain(td)
}

// GetJWTBundleForTrustDomain returns SPIRE's JWT bundle for td. For the
// gateway's own trust domain it adds the gateway's JWT keys, which SPIRE
// has been sent but may not have distributed yet.
func (a *Authority) GetJWTBundleForTrustDomain(td spiffeid.TrustDomain) (*jwtbundle.Bundle, error) {
	b, err := a.jwt.GetJWTBundleForTrustDomain(td)
	if td != a.td {
		return b, err
	}
	merged := jwtbundle.New(td)
	if err == nil {
		merged = b.Clone()
	}
	for kid, key := range a.issuer.JWTAuthorities() {
		if !merged.HasJWTAuthority(kid) {
			_ = merged.AddJWTAuthority(kid, key)
		}
	}
	return merged, nil
}

// SignRunCSR signs a run X.509-SVID from a CSR under the downstream CA.
// See the spiffe.Authority interface for the contract.
func (a *Authority) SignRunCSR(ctx context.Context, csrDER []byte, id spiffeid.ID, notAfter time.Time) ([]*x509.Certificate, error) {
	if _, err := identity.ParseRun(id); err != nil {
		return nil, err
	}
	if notAfter.IsZero() {
		return nil, fmt.Errorf("spire: no expiry given for run %q; pass the run's expiry", id)
	}
	return a.issuer.SignCSR(ctx, csrDER, id, notAfter)
}

// SignToolCSR signs an X.509-SVID for the tool server named server under
// the downstream CA. See the spiffe.Authority interface for the contract.
func (a *Authority) SignToolCSR(ctx context.Context, csrDER []byte, server string) ([]*x509.Certificate, error) {
	id, err := identity.ToolID(a.td, server)
	if err != nil {
		return nil, err
	}
	return a.issuer.SignCSR(ctx, csrDER, id, time.Time{})
}

// MintJWTSVID mints a JWT-SVID with the gateway's published JWT key.
func (a *Authority) MintJWTSVID(ctx context.Context, id spiffeid.ID, audience string, ttl time.Duration) (string, error) {
	return a.issuer.MintJWTSVID(ctx, id, audience, ttl)
}

// Close closes the Workload API sources and the server connection.
func (a *Authority) Close() error {
	var errs []error
	if a.conn != nil {
		errs = append(errs, a.conn.Close())
	}
	if a.jwt != nil {
		errs = append(errs, a.jwt.Close())
	}
	if a.x509 != nil {
		errs = append(errs, a.x509.Close())
	}
	return errors.Join(errs...)
}
