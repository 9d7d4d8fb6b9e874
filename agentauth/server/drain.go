package server

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"

	"github.com/agentauth/agentauth/mcp/gateway"
)

// shutdownApprovals ends approval waits as soon as the gateway begins to
// shut down. A waiting call then replies at once with its pending approval
// (approval_required and the approval id, which the agent can retry with)
// instead of holding the drain until its deadline.
type shutdownApprovals struct {
	next     gateway.Approvals
	shutdown context.Context
}

// Await waits for the approval like next, but returns the shutdown's
// error once the gateway shuts down.
func (a shutdownApprovals) Await(ctx context.Context, approvalID string) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(a.shutdown, cancel)
	defer stop()
	return a.next.Await(ctx, approvalID)
}

// connCounter is a listener that counts its open connections, so that a
// drain that runs out of time can report how many connections it cut.
type connCounter struct {
	net.Listener
	open atomic.Int64
}

// Accept accepts a connection and counts it until it is closed.
func (l *connCounter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.open.Add(1)
	return &countedConn{Conn: c, counter: l}, nil
}

// countedConn is a connection that leaves its counter when closed.
type countedConn struct {
	net.Conn
	counter *connCounter
	once    sync.Once
}

// Close closes the connection and uncounts it once.
func (c *countedConn) Close() error {
	c.once.Do(func() { c.counter.open.Add(-1) })
	return c.Conn.Close()
}

// drained turns a drain that passed its deadline into a warning: the
// gateway still stopped cleanly, but the calls still open were cut.
func (g *Gateway) drained(err error, open *connCounter) error {
	if !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	g.logger.Warn("drain timed out; cutting the calls still in flight",
		"drain", DrainTimeout, "connections", open.open.Load())
	return nil
}
