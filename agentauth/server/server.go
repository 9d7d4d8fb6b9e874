// Package server assembles the agentauth gateway process: the SPIFFE
// authority, the store, the policy, the run manager, the audit log, the
// upstream tool servers, the agents' MCP endpoint, the control API and the
// admin listener, with graceful shutdown and reload.
package server

import (
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentauth/agentauth/agentauth/audit"
	"github.com/agentauth/agentauth/agentauth/authz"
	"github.com/agentauth/agentauth/agentauth/config"
	"github.com/agentauth/agentauth/agentauth/control"
	"github.com/agentauth/agentauth/agentauth/policy"
	"github.com/agentauth/agentauth/agentauth/runs"
	"github.com/agentauth/agentauth/agentauth/store"
	"github.com/agentauth/agentauth/mcp/gateway"
	"github.com/agentauth/agentauth/mcp/txntoken"
	"github.com/agentauth/agentauth/mcp/upstream"
	"github.com/agentauth/agentauth/spiffe"
	"github.com/agentauth/agentauth/traces"
)

// AuditFileName is the audit log's file in the state directory.
const AuditFileName = "audit.db"

// DrainTimeout bounds how long shutdown waits for in-flight calls.
const DrainTimeout = 10 * time.Second

// Gateway is a running gateway process. Start returns it once every
// listener is bound; Wait returns when it has stopped.
type Gateway struct {
	cfg    config.Config
	logger *slog.Logger

	Authority spiffe.Authority
	Runs      *runs.Manager
	Audit     *audit.Log
	Upstream  *upstream.Set
	MCP       *gateway.Gateway
	Control   *control.Server
	Policy    *policy.Watcher

	// Addresses of the bound listeners, useful when the configuration
	// asked for port 0.
	MCPAddr, ControlAddr, AdminAddr string

	mcpLn, controlLn, adminLn net.Listener
	oidcClient                *http.Client

	cancel  context.CancelFunc
	wg      sync.WaitGroup
	errs    chan error
	closers []func() error
}

// Option adjusts Start.
type Option func(*Gateway)

// WithOIDCClient sets the HTTP client that fetches the OpenID provider's
// discovery document and keys, for a provider whose certificate the
// system roots do not cover.
func WithOIDCClient(hc *http.Client) Option { return func(g *Gateway) { g.oidcClient = hc } }

// Start opens every component and starts serving. Cancel ctx (or call
// Stop) to shut down gracefully.
func Start(ctx context.Context, cfg config.Config, logger *slog.Logger, opts ...Option) (_ *Gateway, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	g := &Gateway{cfg: cfg, logger: logger, cancel: cancel, errs: make(chan error, 8)}
	for _, o := range opts {
		o(g)
	}
	defer func() {
		if err != nil {
			cancel()
			g.close()
		}
	}()
	if err := g.bind(); err != nil {
		return nil, err
	}
	if err := g.open(ctx); err != nil {
		return nil, err
	}
	if err := g.listen(ctx); err != nil {
		return nil, err
	}
	logger.Info("gateway started", "state_dir", cfg.StateDir, "trust_domain", cfg.TrustDomain,
		"mcp", "https://"+g.MCPAddr+gateway.Path, "control", "https://"+g.ControlAddr,
		"control_socket", cfg.Listen.ControlSocket, "admin", "http://"+g.AdminAddr)
	return g, nil
}

// open builds every component, in dependency order.
func (g *Gateway) open(ctx context.Context) error {
	cfg, logger := g.cfg, g.logger

	shutdownTraces, err := traces.Setup(ctx, "agentauth", logger.With("component", "traces"))
	if err != nil {
		return err
	}
	g.closers = append(g.closers, func() error {
		flush, cancel := context.WithTimeout(context.Background(), DrainTimeout)
		defer cancel()
		return shutdownTraces(flush)
	})

	authority, err := spiffe.Open(ctx, cfg, logger.With("component", "spiffe"))
	if err != nil {
		return err
	}
	g.Authority = authority
	g.closers = append(g.closers, authority.Close)

	st, err := store.Open(ctx, store.PathIn(cfg.StateDir))
	if err != nil {
		return err
	}
	g.closers = append(g.closers, st.Close)

	g.Audit, err = audit.Open(filepath.Join(cfg.StateDir, AuditFileName),
		audit.WithConfig(cfg.Audit), audit.WithLogger(logger.With("component", "audit")))
	if err != nil {
		return err
	}
	g.closers = append(g.closers, g.Audit.Close)

	pol, err := g.openPolicy(ctx)
	if err != nil {
		return err
	}
	rec := &eventRecorder{log: g.Audit, logger: logger}
	g.Runs, err = runs.Open(ctx, runs.Options{
		TrustDomain: cfg.TrustDomain, Store: st, Policy: pol,
		Recorder: rec, Logger: logger.With("component", "runs"),
	})
	if err != nil {
		return err
	}
	rec.runs = g.Runs
	if g.Policy != nil {
		g.Policy.OnChange = g.Runs.SetPolicy
	}
	go g.Runs.Maintain(ctx, time.Second)

	return g.openEndpoints(ctx)
}

// openPolicy loads the configured policy and starts watching it. With no
// policy configured, the gateway runs with an empty one, which grants
// nothing.
func (g *Gateway) openPolicy(ctx context.Context) (*policy.Policy, error) {
	if g.cfg.Policy == "" {
		g.logger.Warn("no policy configured; every call will be denied until one is set with --policy")
		return policy.Parse("empty", []byte("{}"))
	}
	w, err := policy.NewWatcher(g.cfg.Policy, g.logger.With("component", "policy"))
	if err != nil {
		return nil, err
	}
	g.Policy = w
	go func() {
		if err := w.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			g.logger.Error("policy watcher stopped", "err", err)
		}
	}()
	return w.Policy(), nil
}

func (g *Gateway) openEndpoints(ctx context.Context) error {
	cfg, logger := g.cfg, g.logger
	td := g.Authority.TrustDomain()
	gatewayID := gateway.GatewayID(td)

	// The tool pins live in the same file as the runs, in a table of their
	// own, over a handle of their own so that the store stays unaware of
	// them.
	pinDB, err := sql.Open("sqlite", "file:"+store.PathIn(cfg.StateDir)+
		"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)")
	if err != nil {
		return err
	}
	g.closers = append(g.closers, pinDB.Close)

	servers, err := g.giveToolIdentities(ctx, cfg.Servers, "https://"+g.MCPAddr+gateway.Path)
	if err != nil {
		return err
	}
	// OnChange may run before gateway.New returns, so the gateway is
	// published through an atomic pointer.
	var mcpGateway atomic.Pointer[gateway.Gateway]
	set, err := upstream.New(ctx, servers, upstream.Options{
		DB:     pinDB,
		Logger: logger.With("component", "upstream"),
		TLSConfig: func() (*tls.Config, error) {
			return spiffe.MemberClientTLSConfig(g.Authority), nil
		},
		OnChange: func(upstream.Change) {
			if gw := mcpGateway.Load(); gw != nil {
				gw.Refresh()
			}
		},
		OnNotification: func(ctx context.Context, server string, n mcp.JSONRPCNotification) {
			if gw := mcpGateway.Load(); gw != nil {
				gw.Notify(ctx, server, n)
			}
		},
		Sampling: func(ctx context.Context, server string, r mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			gw := mcpGateway.Load()
			if gw == nil {
				return nil, errors.New("the gateway is still starting")
			}
			return gw.Sampling(ctx, server, r)
		},
		Elicitation: func(ctx context.Context, server string, r mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
			gw := mcpGateway.Load()
			if gw == nil {
				return nil, errors.New("the gateway is still starting")
			}
			return gw.Elicitation(ctx, server, r)
		},
		// Roots stay undeclared: a server such as server-filesystem would
		// otherwise replace the directories configured here with the
		// agent's roots.
	})
	if err != nil {
		return err
	}
	g.Upstream = set
	g.closers = append(g.closers, set.Close)

	tokens, err := txntoken.NewIssuer(gatewayID.String(), txntoken.DefaultTTL)
	if err != nil {
		return err
	}
	pending := &pendingArguments{next: authz.New(g.Runs), redact: cfg.Audit.Redact}
	gw, err := gateway.New(gateway.Options{
		TrustDomain:  td,
		Authorizer:   pending,
		Auditor:      gateway.AuditLog(g.Audit),
		Upstream:     set,
		Tokens:       tokens,
		JWT:          gateway.JWTSVIDs(g.Authority),
		Approvals:    shutdownApprovals{next: g.Runs, shutdown: ctx},
		ApprovalWait: cfg.ApprovalWait,
		ApprovalURL:  func(id string) string { return "https://" + g.ControlAddr + "/approvals#" + id },
		Tracer:       traces.Tracer(),
		Logger:       logger.With("component", "gateway"),
	})
	if err != nil {
		return err
	}
	mcpGateway.Store(gw)
	gw.Refresh()
	g.MCP = gw

	g.Control, err = control.New(cfg, control.Deps{
		Runs:       control.ManagerServices{Manager: g.Runs, Arguments: pending.Arguments},
		Approvals:  control.ManagerServices{Manager: g.Runs, Arguments: pending.Arguments},
		Signer:     g.Authority,
		SVIDs:      g.Authority,
		Bundles:    g.Authority,
		JWTs:       g.Authority,
		HTTPClient: g.oidcClient,
		Logger:     logger.With("component", "control"),
	})
	return err
}

// bind opens the TCP listeners first, so that their addresses are known
// to the components (tool servers learn the gateway's URL) even when the
// configuration asks for port 0.
func (g *Gateway) bind() error {
	for _, l := range []struct {
		name, addr string
		ln         *net.Listener
		bound      *string
	}{
		{"MCP", g.cfg.Listen.MCP, &g.mcpLn, &g.MCPAddr},
		{"the control API", g.cfg.Listen.Control, &g.controlLn, &g.ControlAddr},
		{"admin", g.cfg.Listen.Admin, &g.adminLn, &g.AdminAddr},
	} {
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			return fmt.Errorf("listen for %s on %s: %w", l.name, l.addr, err)
		}
		*l.ln, *l.bound = ln, ln.Addr().String()
		g.closers = append(g.closers, func() error {
			if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				return err
			}
			return nil
		})
	}
	return nil
}

// listen starts serving on every listener.
func (g *Gateway) listen(ctx context.Context) error {
	cfg := g.cfg
	mcpLn := &connCounter{Listener: g.mcpLn}
	g.serve(func() error {
		err := g.MCP.Serve(ctx, mcpLn, gateway.AllowBearer(spiffe.ServerTLSConfig(g.Authority)), DrainTimeout)
		return g.drained(err, mcpLn)
	})
	g.serve(func() error { return g.Control.ServeTLS(ctx, g.controlLn) })

	sockLn, err := control.ListenSocket(cfg.Listen.ControlSocket, 0o600)
	if err != nil {
		return err
	}
	g.serve(func() error { return g.Control.ServeSocket(ctx, sockLn) })

	return g.listenAdmin(ctx)
}

func (g *Gateway) listenAdmin(ctx context.Context) error {
	ready := &Readiness{}
	ready.Add("spiffe", func(context.Context) error { return spiffe.Ready(g.Authority, time.Now()) })
	ready.Add("audit", func(context.Context) error { return g.Audit.Err() })
	ready.Add("upstream", func(context.Context) error { return g.Upstream.Ready() })

	ln := g.adminLn
	srv := &http.Server{Handler: AdminHandler(ready, traces.MetricsHandler()), ReadHeaderTimeout: 5 * time.Second}
	g.serve(func() error {
		go func() {
			<-ctx.Done()
			_ = srv.Close()
		}()
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	return nil
}

// serve runs fn in its own goroutine and reports a failure to Wait.
func (g *Gateway) serve(fn func() error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := fn(); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, net.ErrClosed) {
			g.errs <- err
		}
	}()
}

// Reload reloads the policy from its files.
func (g *Gateway) Reload() error {
	if g.Policy == nil {
		return nil
	}
	return g.Policy.Reload()
}

// Stop shuts the gateway down: stops accepting, drains in-flight calls,
// flushes budgets and the audit log, and stops tool server processes.
func (g *Gateway) Stop() error {
	g.cancel()
	return g.Wait()
}

// Wait blocks until the gateway has stopped or a listener failed, and
// returns the first failure.
func (g *Gateway) Wait() error {
	done := make(chan struct{})
	go func() {
		g.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case err = <-g.errs:
		g.cancel()
		<-done
	case <-done:
	}
	flushCtx, cancel := context.WithTimeout(context.Background(), DrainTimeout)
	defer cancel()
	if g.Runs != nil {
		if ferr := g.Runs.FlushBudgets(flushCtx); ferr != nil {
			g.logger.Error("flush budgets at shutdown", "err", ferr)
		}
	}
	g.close()
	g.logger.Info("gateway stopped")
	return err
}

func (g *Gateway) close() {
	for i := len(g.closers) - 1; i >= 0; i-- {
		if err := g.closers[i](); err != nil {
			g.logger.Warn("close at shutdown", "err", err)
		}
	}
	g.closers = nil
}
