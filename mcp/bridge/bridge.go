package bridge

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
)

// Options configure a Bridge.
type Options struct {
	// GatewayURL is the gateway's MCP endpoint, https://host:port/mcp.
	GatewayURL string
	// GatewayID is the SPIFFE ID the gateway must present.
	GatewayID   spiffeid.ID
	Credentials Credentials
	Logger      *slog.Logger
}

// Bridge relays MCP between a local host and the gateway over mTLS.
type Bridge struct {
	gateway *url.URL
	client  *http.Client
	log     *slog.Logger
}

// New returns a bridge that presents opts.Credentials to the gateway.
func New(opts Options) (*Bridge, error) {
	u, err := url.Parse(opts.GatewayURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, errors.New("bridge: gateway URL must be https://host:port/mcp, got " + opts.GatewayURL)
	}
	if opts.Credentials == nil || opts.GatewayID.IsZero() {
		return nil, errors.New("bridge: credentials and the gateway's SPIFFE ID are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cfg := tlsconfig.MTLSClientConfig(opts.Credentials, opts.Credentials, tlsconfig.AuthorizeID(opts.GatewayID))
	tr := &http.Transport{
		TLSClientConfig:     cfg,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
	}
	return &Bridge{gateway: u, client: &http.Client{Transport: tr}, log: opts.Logger}, nil
}
