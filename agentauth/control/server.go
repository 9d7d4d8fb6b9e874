package control

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agentauth/agentauth/agentauth/config"
)

// Deps are the services a Server drives.
type Deps struct {
	Runs      Runs
	Approvals Approvals
	Signer    Signer
	// SVIDs supplies the gateway's own X.509-SVID, the server certificate
	// of the TLS listener.
	SVIDs x509svid.Source
	// Bundles verifies agents' SVIDs and supplies the bundle returned with
	// a new SVID.
	Bundles x509bundle.Source
	// JWTs mints runs' JWT-SVIDs on POST /v1/svid/jwt; nil answers that
	// route with unavailable.
	JWTs JWTMinter
	// Logger receives starts, stops and handled errors; nil discards them.
	Logger *slog.Logger
	// HTTPClient fetches the OpenID provider's discovery document and keys;
	// nil uses http.DefaultClient.
	HTTPClient *http.Client
	// Now is the clock; nil uses time.Now.
	Now func() time.Time
	// PublicURL is the https URL people use to reach the TLS listener, such
	// as https://agentauth.example.org:8444. The approvals page builds its
	// OIDC redirect URL from it; empty uses the Host of each request.
	PublicURL string
	// BootstrapTTL is the lifetime of a bootstrap token; zero means 2 minutes.
	BootstrapTTL time.Duration
}

// Server is the control API.
type Server struct {
	cfg       config.Config
	td        spiffeid.TrustDomain
	deps      Deps
	log       *slog.Logger
	now       func() time.Time
	oidc      *oidcVerifier
	bootstrap *bootstrapStore
	sessions  *sessionStore
	page      *page
	handler   http.Handler
	routes    []route
	// localAdminUID is the uid that gets the admin role on the socket: the
	// user the gateway runs as.
	localAdminUID uint32
}

// New returns a control API server over the given services.
func New(cfg config.Config, deps Deps) (*Server, error) {
	td, err := spiffeid.TrustDomainFromString(cfg.TrustDomain)
	if err != nil {
		return nil, fmt.Errorf("control: invalid trust domain %q: %w", cfg.TrustDomain, err)
	}
	if deps.Runs == nil || deps.Approvals == nil || deps.Signer == nil || deps.Bundles == nil {
		return nil, errors.New("control: Runs, Approvals, Signer and Bundles are required")
	}
	s := &Server{cfg: cfg, td: td, deps: deps, log: deps.Logger, now: deps.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	ttl := deps.BootstrapTTL
	if ttl <= 0 {
		ttl = 2 * time.Minute
	}
	s.bootstrap = newBootstrapStore(ttl, s.now)
	s.sessions = newSessionStore(time.Hour, s.now)
	s.localAdminUID = currentUID()
	if cfg.OIDC.Issuer != "" {
		s.oidc = newOIDCVerifier(cfg.OIDC, deps.HTTPClient, s.now)
	}
	if s.page, err = newPage(s); err != nil {
		return nil, err
	}
	s.handler = s.routeAll()
	return s, nil
}

// Handler returns the HTTP handler of both listeners. The transport the
// request came over decides how the caller authenticates.
func (s *Server) Handler() http.Handler { return s.handler }

// TLSConfig returns the TLS listener's configuration: the gateway's SVID as
// the server certificate, and an optional client certificate, which an
// agent presents as its run SVID.
func (s *Server) TLSConfig() (*tls.Config, error) {
	if s.deps.SVIDs == nil {
		return nil, errors.New("control: no SVID source for the TLS listener; set Deps.SVIDs")
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		ClientAuth: tls.RequestClientCert,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			svid, err := s.deps.SVIDs.GetX509SVID()
			if err != nil {
				return nil, fmt.Errorf("control: gateway SVID unavailable: %w", err)
			}
			return svidCertificate(svid), nil
		},
	}, nil
}

func svidCertificate(svid *x509svid.SVID) *tls.Certificate {
	c := &tls.Certificate{PrivateKey: svid.PrivateKey, Leaf: svid.Certificates[0]}
	for _, cert := range svid.Certificates {
		c.Certificate = append(c.Certificate, cert.Raw)
	}
	return c
}

// ServeTLS serves the control API with TLS on ln until ctx is done, then
// shuts down gracefully.
func (s *Server) ServeTLS(ctx context.Context, ln net.Listener) error {
	tc, err := s.TLSConfig()
	if err != nil {
		return err
	}
	return s.serve(ctx, tls.NewListener(ln, tc), "tls")
}

// ServeSocket serves the control API on a Unix socket listener (see
// ListenSocket) until ctx is done. The sponsor of each request is the
// operating-system user of the connecting process.
func (s *Server) ServeSocket(ctx context.Context, ln net.Listener) error {
	return s.serve(ctx, ln, "socket")
}

func (s *Server) serve(ctx context.Context, ln net.Listener, kind string) error {
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ConnContext:       connContext,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.log.Info("control API listening", "listener", kind, "addr", ln.Addr().String())
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("control: %s listener: %w", kind, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := hs.Shutdown(sctx)
	s.log.Info("control API stopped", "listener", kind)
	return err
}
