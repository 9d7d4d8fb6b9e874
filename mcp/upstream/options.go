package upstream

import (
	"context"
	"crypto/tls"
	"database/sql"
	"log/slog"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// Options configure a [Set]. DB is required; every other field has a
// working zero value.
type Options struct {
	// DB holds the pin table (created when missing).
	DB *sql.DB
	// Logger receives starts, stops, restarts and pin events; nil is silent.
	Logger *slog.Logger
	// TLSConfig returns the client TLS configuration, presenting the
	// gateway's own SVID, for servers with mtls set. It is called once per
	// session (at start and after each restart), so to follow SVID rotation
	// it should return a configuration whose GetClientCertificate reads the
	// current SVID, as go-spiffe's tlsconfig.MTLSClientConfig does.
	TLSConfig func() (*tls.Config, error)

	// MaxLineBytes bounds one message line read from a stdio server
	// (default 16 MiB). A longer line ends the connection and restarts the
	// server.
	MaxLineBytes int
	// RestartMin and RestartMax bound the exponential backoff between
	// restarts of a failed server (defaults 200ms and 30s).
	RestartMin, RestartMax time.Duration
	// RelistInterval is how often each server's catalog is listed again,
	// to catch changes the server announced with no list_changed
	// notification. Zero means DefaultRelistInterval, a negative value
	// turns it off.
	RelistInterval time.Duration
	// StartTimeout bounds starting one server and listing its catalog
	// (default 30s).
	StartTimeout time.Duration
	// PinPoll is how often the pin table is read for changed tools that an
	// operator accepted from another process (default 2s).
	PinPoll time.Duration

	// OnChange runs, off the caller's path, after the merged catalog
	// changed: a list_changed notification, or a server going down or
	// coming back.
	OnChange func(Change)
	// OnNotification receives the notifications a server sends that the Set
	// does not consume: notifications/message, and
	// notifications/resources/updated with the URI already namespaced. For
	// a log message, ctx is the context of the call it is tied to (a log
	// message that cannot be tied to one call without risk of reaching
	// another run is dropped). It runs on the server's read loop, so it
	// must not block.
	OnNotification func(ctx context.Context, server string, n mcp.JSONRPCNotification)

	// Sampling and Elicitation handle requests a server sends to the
	// client side. ctx is the context of the tool call that caused the
	// request. When nil, the capability is not declared. When either is
	// set, the Set negotiates [SessionProtocol] with every server, so that
	// a server can send these requests during a call; input_required
	// results of 2026-07-28 are answered through the same handlers.
	Sampling    func(ctx context.Context, server string, r mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error)
	Elicitation func(ctx context.Context, server string, r mcp.ElicitationRequest) (*mcp.ElicitationResult, error)
	// Roots handles roots/list. When nil, roots are not declared, so a
	// server such as server-filesystem keeps its configured directories.
	Roots func(ctx context.Context, server string) (*mcp.ListRootsResult, error)
}

// Change describes which part of the catalog changed, and on which server.
type Change struct {
	Server string
	// Kind is "tools", "prompts", "resources" or "server" (the server went
	// down or came back, so every list may have changed).
	Kind string
}

// DefaultRelistInterval is how often a server's catalog is listed again
// by default.
const DefaultRelistInterval = time.Minute

// sessionProtocol reports whether servers are spoken to in
// [SessionProtocol] rather than the newest revision.
func (o *Options) sessionProtocol() bool {
	return o.Sampling != nil || o.Elicitation != nil
}

func (o *Options) withDefaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxLineBytes <= 0 {
		o.MaxLineBytes = 16 << 20
	}
	if o.RestartMin <= 0 {
		o.RestartMin = 200 * time.Millisecond
	}
	if o.RestartMax <= 0 {
		o.RestartMax = 30 * time.Second
	}
	if o.PinPoll <= 0 {
		o.PinPoll = 2 * time.Second
	}
	if o.RelistInterval == 0 {
		o.RelistInterval = DefaultRelistInterval
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 30 * time.Second
	}
}
