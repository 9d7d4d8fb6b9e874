package upstream

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// session is one live connection to a server: a started process (stdio)
// or a Streamable HTTP transport, and the mcp-go client over it.
type session struct {
	client *client.Client
	proc   *process // nil for HTTP
	done   chan struct{}
	// ctx lives as long as the session; streams it opens use it.
	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once
	// failure is the first error that ended the session.
	failure error
	// conns is the HTTP transport of a Streamable HTTP session, whose idle
	// connections close with the session.
	conns *http.Transport
}

// fail ends the session once, recording why.
func (s *session) fail(err error) {
	s.once.Do(func() {
		s.failure = err
		close(s.done)
	})
}

// reason returns why the session ended, preferring what ended the
// process's stdout (such as ErrLineTooLong) over a call's transport error.
func (s *session) reason() error {
	if s.proc != nil {
		select {
		case <-s.proc.done:
			return s.proc.end
		default:
		}
	}
	return s.failure
}

// close stops the client and, for stdio, the process. A server whose line
// was too long may be blocked writing the rest of it, so it gets no grace.
func (s *session) close() {
	s.fail(errors.New("closed"))
	s.cancel()
	_ = s.client.Close()
	if s.conns != nil {
		s.conns.CloseIdleConnections()
	}
	if s.proc != nil {
		grace := 3 * time.Second
		if errors.Is(s.reason(), ErrLineTooLong) {
			grace = 0
		}
		_ = s.proc.stop(grace)
	}
}

// open starts a session to the connection's server and completes the MCP
// handshake. The session context outlives ctx, which bounds the start.
func (c *conn) open(ctx context.Context) (*session, error) {
	var tr transport.Interface
	var conns *http.Transport
	var proc *process
	var err error
	if len(c.cfg.Command) > 0 {
		proc, tr, err = startProcess(c.cfg.Command, c.cfg.Env, c.set.opts.MaxLineBytes, c.log)
	} else {
		tr, conns, err = newHTTPTransport(c.cfg, &c.set.opts, c.set.opts.sessionProtocol())
	}
	if err != nil {
		return nil, err
	}

	sessCtx, cancel := context.WithCancel(c.set.ctx)
	s := &session{proc: proc, done: make(chan struct{}), ctx: sessCtx, cancel: cancel, conns: conns}
	s.client = client.NewClient(tr, c.clientOptions()...)
	if proc != nil {
		go func() {
			<-proc.done
			s.fail(proc.end)
		}()
	}
	if err := c.handshake(ctx, sessCtx, s); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (c *conn) handshake(ctx, sessCtx context.Context, s *session) error {
	if err := s.client.Start(sessCtx); err != nil {
		return err
	}
	s.client.OnNotification(func(n mcp.JSONRPCNotification) { c.onNotification(s, n) })

	req := mcp.InitializeRequest{}
	req.Params.ClientInfo = mcp.Implementation{Name: "agentauth", Version: "1"}
	if _, err := s.client.Initialize(ctx, req); err != nil {
		return err
	}
	c.takeAllLogs(ctx, s)
	return c.listen(sessCtx, s)
}

// takeAllLogs requests every log message from a server that logs, so that
// the gateway can pass each client the ones at or above the level that
// client chose. Without it a server sends only errors (mcp-go's default).
// Under protocol version 2026-07-28 the level is declared per request,
// which mcp-go's client then does for every request it sends.
func (c *conn) takeAllLogs(ctx context.Context, s *session) {
	if s.client.GetServerCapabilities().Logging == nil {
		return
	}
	if err := s.client.SetLevel(ctx, mcp.SetLevelRequest{Params: mcp.SetLevelParams{Level: mcp.LoggingLevelDebug}}); err != nil {
		c.log.Warn("upstream server did not take log level debug; only its default level of log messages will reach clients", "err", err)
	}
}

// listen opts in to list_changed notifications. Protocol version 2026-07-28
// delivers them only on a subscriptions/listen stream; earlier versions send
// them unasked.
func (c *conn) listen(sessCtx context.Context, s *session) error {
	if !mcp.IsModernProtocol(s.client.ProtocolVersion()) {
		return nil
	}
	caps := s.client.GetServerCapabilities()
	filter := mcp.SubscriptionFilter{
		ToolsListChanged:     caps.Tools != nil && caps.Tools.ListChanged,
		PromptsListChanged:   caps.Prompts != nil && caps.Prompts.ListChanged,
		ResourcesListChanged: caps.Resources != nil && caps.Resources.ListChanged,
	}
	if filter.IsEmpty() {
		return nil
	}
	_, err := s.client.ListenAsync(sessCtx, filter, func(err error) {
		c.log.Warn("upstream subscriptions/listen stream ended; list changes are no longer seen", "err", err)
	})
	return err
}

// SessionProtocol is the protocol version the Set negotiates when it relays
// sampling or elicitation: the newest revision with sessions, in which a
// server may send those requests while it handles a call. In 2026-07-28 a
// server can only ask for them by returning an input_required result, and a
// tool written against the session API (RequestSampling, RequestElicitation)
// would fail; mcp-go servers that return input_required results are served
// on this revision too, since mcp-go sends the session requests for them.
const SessionProtocol = mcp.ProtocolVersion20251125

func (c *conn) clientOptions() []client.ClientOption { return c.clientOptionsFor("") }

// clientOptionsFor returns the client options of a session for run, or of
// the shared session when run is empty.
func (c *conn) clientOptionsFor(run string) []client.ClientOption {
	var opts []client.ClientOption
	if c.set.opts.sessionProtocol() {
		opts = append(opts, client.WithProtocolVersion(SessionProtocol))
	}
	if c.set.opts.Sampling != nil {
		opts = append(opts, client.WithSamplingHandler(samplingRelay{c, run}))
	}
	if c.set.opts.Elicitation != nil {
		opts = append(opts, client.WithElicitationHandler(elicitationRelay{c, run}))
	}
	if c.set.opts.Roots != nil {
		opts = append(opts, client.WithRootsHandler(rootsRelay{c}))
	}
	return opts
}
