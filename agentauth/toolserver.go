package agentauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// The environment variables the gateway sets for a tool server configured
// with identity: true. The files are PEM; the gateway rewrites them before
// the SVID expires.
const (
	EnvSVIDCert = "AGENTAUTH_SVID_CERT" // the tool server's X.509-SVID chain
	EnvSVIDKey  = "AGENTAUTH_SVID_KEY"  // its private key (mode 0600)
)

// ToolServer is the identity of a tool server that calls other tools
// through the gateway: its X.509-SVID (spiffe://<td>/tools/<server>),
// read from the files named in the environment and reloaded when the
// gateway renews them.
type ToolServer struct {
	gateway            string
	certPath, keyPath  string
	bundlePath         string
	gatewayID          spiffeid.ID
	mu                 sync.Mutex
	svid               *x509svid.SVID
	bundle             *x509bundle.Bundle
	certMod, bundleMod time.Time
}

// JoinAsToolServer loads the tool server's identity from the environment
// (AGENTAUTH_GATEWAY, AGENTAUTH_SVID_CERT, AGENTAUTH_SVID_KEY,
// AGENTAUTH_TRUST_BUNDLE).
func JoinAsToolServer() (*ToolServer, error) {
	t := &ToolServer{
		gateway:    os.Getenv(EnvGateway),
		certPath:   os.Getenv(EnvSVIDCert),
		keyPath:    os.Getenv(EnvSVIDKey),
		bundlePath: os.Getenv(EnvTrustBundle),
	}
	if t.gateway == "" || t.certPath == "" || t.keyPath == "" || t.bundlePath == "" {
		return nil, fmt.Errorf("agentauth: set %s, %s, %s and %s; the gateway sets them for a tool server configured with identity: true",
			EnvGateway, EnvSVIDCert, EnvSVIDKey, EnvTrustBundle)
	}
	if err := t.reload(); err != nil {
		return nil, err
	}
	gw, err := spiffeid.FromSegments(t.svid.ID.TrustDomain(), "agentauth", "gateway")
	if err != nil {
		return nil, err
	}
	t.gatewayID = gw
	return t, nil
}

// reload reads the files again when they changed since the last read.
func (t *ToolServer) reload() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	ci, err := os.Stat(t.certPath)
	if err != nil {
		return fmt.Errorf("agentauth: tool server SVID: %w", err)
	}
	bi, err := os.Stat(t.bundlePath)
	if err != nil {
		return fmt.Errorf("agentauth: trust bundle: %w", err)
	}
	if t.svid != nil && ci.ModTime().Equal(t.certMod) && bi.ModTime().Equal(t.bundleMod) {
		return nil
	}
	svid, err := x509svid.Load(t.certPath, t.keyPath)
	if err != nil {
		return fmt.Errorf("agentauth: load tool server SVID: %w", err)
	}
	bundle, err := x509bundle.Load(svid.ID.TrustDomain(), t.bundlePath)
	if err != nil {
		return fmt.Errorf("agentauth: load trust bundle: %w", err)
	}
	t.svid, t.bundle, t.certMod, t.bundleMod = svid, bundle, ci.ModTime(), bi.ModTime()
	return nil
}

// GetX509SVID returns the current SVID, reloading it when the gateway has
// renewed the files. It implements x509svid.Source.
func (t *ToolServer) GetX509SVID() (*x509svid.SVID, error) {
	if err := t.reload(); err != nil {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.svid == nil || time.Now().After(t.svid.Certificates[0].NotAfter) {
			return nil, err
		}
		return t.svid, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.svid, nil
}

// GetX509BundleForTrustDomain implements x509bundle.Source.
func (t *ToolServer) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	_ = t.reload()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.bundle == nil || t.bundle.TrustDomain() != td {
		return nil, fmt.Errorf("agentauth: no trust bundle for %q", td)
	}
	return t.bundle, nil
}

// ID returns the tool server's SPIFFE ID.
func (t *ToolServer) ID() spiffeid.ID {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.svid.ID
}

// MCPClient returns an mcp-go client connected to the gateway with the
// tool server's mTLS. Every call must carry the transaction token of the
// call being served: pass a context from WithTxnToken, or the gateway
// denies it.
func (t *ToolServer) MCPClient(ctx context.Context, name string) (*client.Client, error) {
	if t.gateway == "" {
		return nil, errors.New("agentauth: no gateway URL; set " + EnvGateway)
	}
	hc := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   tlsconfig.MTLSClientConfig(t, t, tlsconfig.AuthorizeID(t.gatewayID)),
		ForceAttemptHTTP2: true,
	}}
	c, err := client.NewStreamableHttpClient(t.gateway,
		transport.WithHTTPBasicClient(hc), transport.WithHTTPHeaderFunc(txnTokenHeader))
	if err != nil {
		return nil, fmt.Errorf("agentauth: MCP client for %s: %w", t.gateway, err)
	}
	if err := c.Start(ctx); err != nil {
		return nil, fmt.Errorf("agentauth: start MCP client: %w", err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: name, Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		c.Close()
		return nil, fmt.Errorf("agentauth: initialize MCP session with %s: %w", t.gateway, err)
	}
	return c, nil
}
