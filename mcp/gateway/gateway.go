package gateway

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/server"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentauth/agentauth/mcp/txntoken"
)

// DefaultMaxBodyBytes bounds a request body unless Options sets another limit.
const DefaultMaxBodyBytes = 4 << 20

// DefaultSessionIdleTTL is how long a session may sit idle before the
// gateway ends it and drops its binding.
const DefaultSessionIdleTTL = 30 * time.Minute

// DefaultApprovalWait is how long a call needing approval waits for a
// human before the gateway replies with the pending approval's id.
const DefaultApprovalWait = 30 * time.Second

// Options configure a Gateway. TrustDomain, Authorizer, Auditor, Upstream
// and Tokens are required.
type Options struct {
	TrustDomain spiffeid.TrustDomain
	// Audience is the JWT-SVID audience the gateway accepts; by default
	// its own SPIFFE ID, spiffe://<td>/agentauth/gateway.
	Audience   string
	Authorizer Authorizer
	Auditor    Auditor
	Upstream   Upstream
	Tokens     *txntoken.Issuer
	// JWT validates bearer JWT-SVIDs; nil accepts mTLS only.
	JWT JWTValidator
	// Approvals lets approval-required calls wait; nil replies at once
	// with the pending approval.
	Approvals    Approvals
	ApprovalWait time.Duration
	// ApprovalURL, when set, gives the link where a sponsor decides an
	// approval; it is sent to clients that support URL elicitation.
	ApprovalURL  func(approvalID string) string
	MaxBodyBytes int64
	// SessionIdleTTL ends idle sessions; DefaultSessionIdleTTL when zero.
	SessionIdleTTL time.Duration
	// Unprefixed, when set, names the one upstream server the gateway
	// fronts, and exposes its tools, prompts and resources under their own
	// names and URIs instead of "<server>__<name>" and
	// "agentauth://<server>/<uri>". Entries of other servers are hidden.
	// It makes the gateway a drop-in front for a single tool server.
	Unprefixed string
	Tracer     trace.Tracer
	// MeterProvider records the gateway's metrics; the global one of
	// package otel when nil.
	MeterProvider metric.MeterProvider
	Logger        *slog.Logger
	Now           func() time.Time
}

// MetricToolCalls counts the tools/call requests forwarded to tool
// servers, by how they were forwarded (attribute agentauth.forwarding).
const MetricToolCalls = "agentauth.gateway.tool_calls"

// Gateway is the agents' MCP endpoint. It is an http.Handler for /mcp.
type Gateway struct {
	opts     Options
	mcp      *server.MCPServer
	http     *server.StreamableHTTPServer
	sessions *sessions
	verifier *txntoken.Verifier
	prop     propagation.TextMapPropagator
	refused  *refusals

	toolCalls metric.Int64Counter // MetricToolCalls
	outcomes  sync.WaitGroup      // outcome records being written
	// clients holds, by session id, what each client declared at
	// initialize (a clientSession).
	clients sync.Map

	mu    sync.RWMutex
	tools map[string]exposedTool // exposed name -> tool, including quarantined
}

// New builds a gateway over opts and loads the upstream catalog.
func New(opts Options) (*Gateway, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	refused, err := newRefusals(opts.MeterProvider)
	if err != nil {
		return nil, err
	}
	toolCalls, err := opts.MeterProvider.Meter("github.com/agentauth/agentauth/mcp/gateway").Int64Counter(
		MetricToolCalls, metric.WithUnit("{call}"),
		metric.WithDescription("Tool calls forwarded to tool servers, by how they were forwarded."))
	if err != nil {
		return nil, fmt.Errorf("gateway: metrics: %w", err)
	}
	g := &Gateway{
		refused:   refused,
		toolCalls: toolCalls,
		opts:      opts,
		sessions:  newSessions(),
		verifier:  opts.Tokens.Verifier(),
		prop:      propagation.TraceContext{},
	}
	g.mcp = server.NewMCPServer("agentauth", "1",
		server.WithToolCapabilities(true),
		server.WithToolFilter(g.filterTools),
		server.WithPromptFilter(g.filterPrompts),
		server.WithResourceCapabilities(true, true),
		server.WithPromptCapabilities(true),
		server.WithCompletions(),
		server.WithPromptCompletionProvider(completer{g}),
		server.WithResourceCompletionProvider(completer{g}),
		server.WithLogging(),
		server.WithElicitation(),
		server.WithHooks(g.hooks()),
	)
	g.http = server.NewStreamableHTTPServer(g.mcp,
		server.WithSessionIdManagerResolver(g.sessions),
		server.WithEventStore(server.NewInMemoryEventStore()),
		server.WithStreamableHTTPLogger(opts.Logger),
		server.WithDisableLocalhostProtection(true),
		server.WithSessionIdleTTL(opts.SessionIdleTTL),
	)
	g.Refresh()
	return g, nil
}

func (o *Options) fill() error {
	switch {
	case o.TrustDomain.IsZero():
		return errors.New("gateway: trust domain is required")
	case o.Authorizer == nil || o.Auditor == nil || o.Upstream == nil || o.Tokens == nil:
		return errors.New("gateway: Authorizer, Auditor, Upstream and Tokens are required")
	}
	if o.Audience == "" {
		o.Audience = GatewayID(o.TrustDomain).String()
	}
	if o.ApprovalWait <= 0 {
		o.ApprovalWait = DefaultApprovalWait
	}
	if o.SessionIdleTTL <= 0 {
		o.SessionIdleTTL = DefaultSessionIdleTTL
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.Tracer == nil {
		o.Tracer = otel.Tracer("github.com/agentauth/agentauth/mcp/gateway")
	}
	if o.MeterProvider == nil {
		o.MeterProvider = otel.GetMeterProvider()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// GatewayID returns the gateway's SPIFFE ID in td.
func GatewayID(td spiffeid.TrustDomain) spiffeid.ID {
	id, _ := spiffeid.FromSegments(td, "agentauth", "gateway")
	return id
}

// ToolServerID returns the SPIFFE ID of the tool server named server.
func ToolServerID(td spiffeid.TrustDomain, server string) spiffeid.ID {
	id, err := spiffeid.FromSegments(td, "tools", server)
	if err != nil {
		return spiffeid.ID{}
	}
	return id
}

// MCPServer returns the mcp-go server behind the gateway, for relaying
// server-to-client requests (sampling, elicitation, roots).
func (g *Gateway) MCPServer() *server.MCPServer { return g.mcp }

// Flush waits until every outcome record handed to the Auditor is written.
func (g *Gateway) Flush() { g.outcomes.Wait() }

// ActiveSessions returns how many session ids are bound to callers.
func (g *Gateway) ActiveSessions() int { return g.sessions.count() }

var _ http.Handler = (*Gateway)(nil)
