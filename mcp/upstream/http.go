package upstream

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/mark3labs/mcp-go/client/transport"

	"github.com/agentauth/agentauth/agentauth/config"
)

// maxIdleConns is how many idle connections to one HTTP server are kept
// for reuse.
const maxIdleConns = 64

// newHTTPTransport returns a Streamable HTTP transport to the server, with
// the gateway's SVID when the server is configured with mtls and with the configured
// headers on every request. With sessions, it keeps the standalone GET
// stream open, on which a server of that revision sends list_changed
// notifications.
func newHTTPTransport(s config.Server, opts *Options, sessions bool) (transport.Interface, *http.Transport, error) {
	// A transport of its own, whose idle pool holds a connection for each
	// concurrent call: the default keeps two per host, so under load every
	// further call would open (and then close) a new connection.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = maxIdleConns, maxIdleConns
	hc := &http.Client{Transport: tr}
	if s.MTLS {
		if opts.TLSConfig == nil {
			return nil, nil, fmt.Errorf("server %q has mtls set but the gateway has no TLS configuration", s.Name)
		}
		tc, err := opts.TLSConfig()
		if err != nil {
			return nil, nil, fmt.Errorf("server %q: TLS configuration: %w", s.Name, err)
		}
		tr.TLSClientConfig, tr.ForceAttemptHTTP2 = tc, true
	}
	// NOTE: an HTTP server is only noticed down when a call fails at the
	// transport level; there is no probe while it is idle, so its tools stay
	// in the catalog until then.
	topts := []transport.StreamableHTTPCOption{
		transport.WithHTTPBasicClient(hc),
		transport.WithHTTPHeaders(s.Headers),
		transport.WithHTTPLogger(slog.New(routineAsDebug{opts.Logger.With("server", s.Name).Handler()})),
	}
	if sessions {
		topts = append(topts, transport.WithContinuousListening())
	}
	t, err := transport.NewStreamableHTTP(s.URL, topts...)
	if err != nil {
		return nil, nil, fmt.Errorf("server %q: %w", s.Name, err)
	}
	return t, tr, nil
}

// routineAsDebug passes log records on at debug level unless they are
// warnings or errors. mcp-go's transport logs routine steps, such as
// opening its listening stream, at info level, once per session.
type routineAsDebug struct{ slog.Handler }

func (h routineAsDebug) Enabled(ctx context.Context, l slog.Level) bool {
	return h.Handler.Enabled(ctx, routineLevel(l))
}

func (h routineAsDebug) Handle(ctx context.Context, r slog.Record) error {
	r.Level = routineLevel(r.Level)
	return h.Handler.Handle(ctx, r)
}

func (h routineAsDebug) WithAttrs(attrs []slog.Attr) slog.Handler {
	return routineAsDebug{h.Handler.WithAttrs(attrs)}
}

func (h routineAsDebug) WithGroup(name string) slog.Handler {
	return routineAsDebug{h.Handler.WithGroup(name)}
}

func routineLevel(l slog.Level) slog.Level {
	if l < slog.LevelWarn {
		return slog.LevelDebug
	}
	return l
}
