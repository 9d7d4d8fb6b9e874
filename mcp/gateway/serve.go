package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Path is where the gateway serves MCP.
const Path = "/mcp"

// Serve serves /mcp over TLS on ln until ctx ends, then shuts down,
// letting in-flight calls finish for up to drain. tlsConfig comes from
// the caller, typically built from an X.509-SVID source so that rotation
// is followed; it should request client certificates without requiring
// them (tls.VerifyClientCertIfGiven) when JWT-SVID bearers are accepted.
func (g *Gateway) Serve(ctx context.Context, ln net.Listener, tlsConfig *tls.Config, drain time.Duration) error {
	if tlsConfig == nil {
		return errors.New("gateway: a TLS configuration is required; the MCP endpoint never serves plain HTTP")
	}
	mux := http.NewServeMux()
	mux.Handle(Path, g)
	srv := &http.Server{
		Handler:           mux,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(g.opts.Logger.Handler(), slog.LevelDebug),
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(tls.NewListener(ln, tlsConfig)) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	g.http.CloseSessions(sctx)
	err := srv.Shutdown(sctx)
	<-done
	g.Flush()
	return err
}
