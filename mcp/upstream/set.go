package upstream

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/agentauth/agentauth/agentauth/config"
)

// Set is the gateway's connections to every configured tool server.
type Set struct {
	ctx    context.Context // lives until Close; owns the connections
	cancel context.CancelFunc
	opts   Options
	pins   *Pins
	conns  map[string]*conn
	order  []string
	tokens atomic.Uint64
}

// New checks the server configuration, creates the pin table and starts
// every server. It returns once each server has come up or failed its first
// start; a server that failed keeps retrying in the background. Only a
// configuration or database error fails New.
func New(ctx context.Context, servers []config.Server, opts Options) (*Set, error) {
	if opts.DB == nil {
		return nil, errors.New("upstream: Options.DB is nil; pass the gateway's SQLite database")
	}
	if err := checkServers(servers); err != nil {
		return nil, err
	}
	opts.withDefaults()
	pins, err := OpenPins(ctx, opts.DB)
	if err != nil {
		return nil, err
	}

	s := &Set{opts: opts, pins: pins, conns: map[string]*conn{}}
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	for _, cfg := range servers {
		c := &conn{cfg: cfg, set: s, log: opts.Logger.With("server", cfg.Name),
			started: make(chan struct{}), stopped: make(chan struct{})}
		c.calls.m = map[uint64]*inflight{}
		s.conns[cfg.Name] = c
		s.order = append(s.order, cfg.Name)
		opts.Logger.Info("upstream server starting", "server", cfg.Name, "transport", transportName(cfg))
		go c.run()
	}
	go s.watchPins()
	for _, name := range s.order {
		select {
		case <-s.conns[name].started:
		case <-ctx.Done():
			s.Close()
			return nil, ctx.Err()
		}
	}
	return s, nil
}

// checkServers rejects server configurations whose names cannot be
// namespaced unambiguously.
func checkServers(servers []config.Server) error {
	var errs []error
	folded := map[string]string{}
	for i, s := range servers {
		if err := ValidServerName(s.Name); err != nil {
			errs = append(errs, fmt.Errorf("servers[%d]: %w", i, err))
		}
		if (len(s.Command) == 0) == (s.URL == "") {
			errs = append(errs, fmt.Errorf("servers[%d] %q: set exactly one of command and url", i, s.Name))
		}
		key := strings.ToLower(s.Name)
		if other, ok := folded[key]; ok {
			errs = append(errs, fmt.Errorf("servers[%d]: name %q collides with %q: tool names %s__x and %s__x "+
				"would differ only in case; rename one server", i, s.Name, other, s.Name, other))
		}
		folded[key] = s.Name
	}
	if len(errs) > 0 {
		return fmt.Errorf("upstream: invalid servers: %w", errors.Join(errs...))
	}
	return nil
}

func transportName(s config.Server) string {
	if len(s.Command) > 0 {
		return "stdio"
	}
	return "http"
}

// Close stops every server and waits for their processes to exit.
func (s *Set) Close() error {
	s.cancel()
	for _, c := range s.conns {
		<-c.stopped
	}
	s.opts.Logger.Info("upstream servers stopped", "servers", len(s.conns))
	return nil
}

// Ready returns nil when every server is up, or an error naming those that
// are not.
func (s *Set) Ready() error {
	var down []string
	for _, name := range s.order {
		if _, err := s.conns[name].session(); err != nil {
			down = append(down, name)
		}
	}
	if len(down) > 0 {
		return fmt.Errorf("%w: %s", ErrUnavailable, strings.Join(down, ", "))
	}
	return nil
}

// Pins returns the pin table.
func (s *Set) Pins() *Pins { return s.pins }

// Catalog returns the merged catalog of the servers that are up, servers
// in configuration order and tools sorted by name.
func (s *Set) Catalog() Catalog {
	var cat Catalog
	for _, name := range s.order {
		c := s.conns[name]
		c.mu.RLock()
		tools := make([]Tool, 0, len(c.catalog.tools))
		for _, t := range c.catalog.tools {
			tools = append(tools, t)
		}
		sort.Slice(tools, func(i, j int) bool { return tools[i].Upstream < tools[j].Upstream })
		cat.Tools = append(cat.Tools, tools...)
		cat.Prompts = append(cat.Prompts, c.catalog.prompts...)
		cat.Resources = append(cat.Resources, c.catalog.resources...)
		cat.ResourceTemplates = append(cat.ResourceTemplates, c.catalog.templates...)
		c.mu.RUnlock()
	}
	return cat
}

// Tool returns the tool exposed under a namespaced name.
func (s *Set) Tool(namespaced string) (Tool, bool) {
	server, name, ok := SplitName(namespaced)
	if !ok {
		return Tool{}, false
	}
	c, ok := s.conns[server]
	if !ok {
		return Tool{}, false
	}
	return c.tool(name)
}

// PID returns the process id of a running stdio server, or 0.
func (s *Set) PID(server string) int {
	if c, ok := s.conns[server]; ok {
		return c.pid()
	}
	return 0
}

func (s *Set) conn(server string) (*conn, error) {
	c, ok := s.conns[server]
	if !ok {
		return nil, fmt.Errorf("%w: no server %q is configured", ErrUnknown, server)
	}
	return c, nil
}

// changed reports a catalog change to Options.OnChange, off the caller's
// goroutine.
func (s *Set) changed(ch Change) {
	if s.opts.OnChange != nil {
		go s.opts.OnChange(ch)
	}
}
