package upstream

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"

	"github.com/agentauth/agentauth/agentauth/config"
)

// conn supervises one configured server: it keeps a session open,
// restarting it with backoff, and holds the server's part of the catalog.
type conn struct {
	cfg config.Server
	set *Set
	log *slog.Logger

	mu      sync.RWMutex
	sess    *session // nil while down
	catalog serverCatalog

	refreshMu sync.Mutex // one listing at a time
	started   chan struct{}
	startOnce sync.Once
	stopped   chan struct{}

	calls inflightCalls
	runs  runSessions
}

// run keeps the server connected until the Set closes.
func (c *conn) run() {
	defer close(c.stopped)
	delay := c.set.opts.RestartMin
	for c.set.ctx.Err() == nil {
		began := time.Now()
		s, err := c.start()
		c.startOnce.Do(func() { close(c.started) })
		if err != nil {
			c.log.Error("upstream server failed to start", "err", err, "retry_in", delay)
		} else {
			c.serve(s)
			if c.set.ctx.Err() != nil {
				return
			}
			if time.Since(began) > 10*c.set.opts.RestartMin {
				delay = c.set.opts.RestartMin
			}
			c.log.Warn("upstream server stopped; restarting", "err", s.reason(), "retry_in", delay)
		}
		select {
		case <-c.set.ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, c.set.opts.RestartMax)
	}
}

// start opens a session and lists the server's catalog.
func (c *conn) start() (*session, error) {
	ctx, cancel := context.WithTimeout(c.set.ctx, c.set.opts.StartTimeout)
	defer cancel()
	s, err := c.open(ctx)
	if err != nil {
		return nil, err
	}
	cat, err := c.list(ctx, s)
	if err != nil {
		s.close()
		return nil, err
	}

	attrs := []any{"tools", len(cat.tools)}
	if s.proc != nil {
		attrs = append(attrs, "pid", s.proc.cmd.Process.Pid)
	}
	c.mu.Lock()
	c.sess, c.catalog = s, cat
	c.mu.Unlock()
	c.log.Info("upstream server up", attrs...)
	c.set.changed(Change{Server: c.cfg.Name, Kind: "server"})
	return s, nil
}

// serve waits for the session to end, then takes the server out of the
// catalog. Meanwhile it lists the server's catalog again every
// RelistInterval: a server may change its tools without a list_changed
// notification, or restart behind a URL and accept the old session.
func (c *conn) serve(s *session) {
	var relist <-chan time.Time
	if d := c.set.opts.RelistInterval; d > 0 {
		t := time.NewTicker(d)
		defer t.Stop()
		relist = t.C
	}
	sweep := time.NewTicker(runSessionIdle / 4)
	defer sweep.Stop()
	defer c.runs.closeAll()
wait:
	for {
		select {
		case <-s.done:
			break wait
		case <-c.set.ctx.Done():
			break wait
		case <-relist:
			c.relist(s)
		case now := <-sweep.C:
			c.runs.sweep(now, runSessionIdle)
		}
	}
	c.mu.Lock()
	c.sess, c.catalog = nil, serverCatalog{}
	c.mu.Unlock()
	s.close()
	if c.set.ctx.Err() == nil {
		c.set.changed(Change{Server: c.cfg.Name, Kind: "server"})
	}
}

// session returns the live session, or ErrUnavailable.
func (c *conn) session() (*session, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.sess == nil {
		return nil, ErrUnavailable
	}
	return c.sess, nil
}

// checkTransport ends a session whose transport failed, so that run
// reconnects. An error the server returned, or a cancelled call, leaves it.
func (c *conn) checkTransport(ctx context.Context, s *session, err error) error {
	var te *transport.Error
	if err == nil || ctx.Err() != nil || !errors.As(err, &te) {
		return err
	}
	s.fail(err)
	return errors.Join(ErrUnavailable, err)
}

// pid returns the process id of a running stdio server, or 0.
func (c *conn) pid() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.sess == nil || c.sess.proc == nil {
		return 0
	}
	return c.sess.proc.cmd.Process.Pid
}
