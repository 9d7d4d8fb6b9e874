package upstream

import (
	"context"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

// Bounds on the sessions a Streamable HTTP server holds for single runs.
const (
	// maxRunSessions is how many run sessions one server may hold. Past
	// it, the least recently used idle one is closed, or the call uses the
	// shared session when none is idle.
	maxRunSessions = 64
	// runSessionIdle is how long a run session may go unused before it is
	// closed.
	runSessionIdle = 2 * time.Minute
)

// runSessions are the sessions a Streamable HTTP server holds for single
// runs. On the revision with sessions a server sends log messages and
// requests on a session's own streams, so what arrives on a run's session
// belongs to that run, and no other run's call can be picked for it.
type runSessions struct {
	mu sync.Mutex
	m  map[string]*runSession
	// full is set once a call found no room, so that the warning is
	// logged once.
	full bool
}

// runSession is one run's session and its use.
type runSession struct {
	sess *session
	busy int // calls in progress
	last time.Time
}

// perRun reports whether the server gets a session for each run: a
// Streamable HTTP server spoken to on the revision with sessions.
func (c *conn) perRun() bool {
	return len(c.cfg.Command) == 0 && c.set.opts.sessionProtocol()
}

// sessionFor returns the session a call of run uses, and a func to call
// when the call is over. It opens the run's session on the run's first
// call, and uses the shared session for a call without a run, for a
// server without run sessions, or when no room is left for one.
func (c *conn) sessionFor(ctx context.Context, run string) (*session, func(), error) {
	shared, err := c.session()
	if err != nil {
		return nil, nil, err
	}
	if run == "" || !c.perRun() {
		return shared, func() {}, nil
	}
	if s, release, ok := c.runs.take(run); ok {
		return s, release, nil
	}
	if !c.runs.room() {
		return shared, func() {}, nil
	}
	s, err := c.openRun(ctx, run)
	if err != nil {
		c.log.Warn("run session did not open; the call uses the shared session", "run_id", run, "err", err)
		return shared, func() {}, nil
	}
	if stored, release, ok := c.runs.add(run, s, c); ok {
		return stored, release, nil
	}
	s.close()
	return shared, func() {}, nil
}

// room reports whether a new run session could be kept: fewer than the
// maximum, or an idle one to close for it.
func (rs *runSessions) room() bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if len(rs.m) < maxRunSessions {
		rs.full = false
		return true
	}
	for _, r := range rs.m {
		if r.busy == 0 {
			return true
		}
	}
	return false
}

// take returns run's live session, marked busy.
func (rs *runSessions) take(run string) (*session, func(), bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r := rs.m[run]
	if r == nil {
		return nil, nil, false
	}
	select {
	case <-r.sess.done:
		delete(rs.m, run)
		go r.sess.close()
		return nil, nil, false
	default:
	}
	r.busy++
	r.last = time.Now()
	return r.sess, rs.release(r), true
}

// add keeps s as run's session and marks it busy, or reports false when
// there is no room. Another call of run may have opened one meanwhile,
// which is kept instead.
func (rs *runSessions) add(run string, s *session, c *conn) (*session, func(), bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if c.set.ctx.Err() != nil {
		// The set is closing: closeAll runs, or has run, after its context
		// ended, so a session kept now would never be closed.
		return nil, nil, false
	}
	if rs.m == nil {
		rs.m = map[string]*runSession{}
	}
	if r := rs.m[run]; r != nil {
		select {
		case <-r.sess.done:
			// It failed meanwhile: the new session takes its place.
			go r.sess.close()
			delete(rs.m, run)
		default:
			go s.close()
			r.busy++
			r.last = time.Now()
			return r.sess, rs.release(r), true
		}
	}
	if len(rs.m) >= maxRunSessions && !rs.evictIdle() {
		if !rs.full {
			rs.full = true
			c.log.Warn("no room for another run session; calls of further runs use the shared session",
				"max", maxRunSessions)
		}
		return nil, nil, false
	}
	r := &runSession{sess: s, busy: 1, last: time.Now()}
	rs.m[run] = r
	return s, rs.release(r), true
}

// evictIdle closes the least recently used idle session; rs.mu is held.
func (rs *runSessions) evictIdle() bool {
	var oldest string
	for run, r := range rs.m {
		if r.busy == 0 && (oldest == "" || r.last.Before(rs.m[oldest].last)) {
			oldest = run
		}
	}
	if oldest == "" {
		return false
	}
	go rs.m[oldest].sess.close()
	delete(rs.m, oldest)
	return true
}

func (rs *runSessions) release(r *runSession) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			rs.mu.Lock()
			r.busy--
			r.last = time.Now()
			rs.mu.Unlock()
		})
	}
}

// sweep closes the run sessions unused for longer than idle.
func (rs *runSessions) sweep(now time.Time, idle time.Duration) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for run, r := range rs.m {
		if r.busy == 0 && now.Sub(r.last) > idle {
			go r.sess.close()
			delete(rs.m, run)
		}
	}
}

// closeAll closes every run session, when the shared session ends.
func (rs *runSessions) closeAll() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for run, r := range rs.m {
		go r.sess.close()
		delete(rs.m, run)
	}
}

// openRun opens a session to the server for run's calls. It completes the
// handshake and requests every log message. It lists nothing, because the
// shared session keeps the catalog.
func (c *conn) openRun(ctx context.Context, run string) (*session, error) {
	tr, conns, err := newHTTPTransport(c.cfg, &c.set.opts, true)
	if err != nil {
		return nil, err
	}
	sessCtx, cancel := context.WithCancel(c.set.ctx)
	s := &session{done: make(chan struct{}), ctx: sessCtx, cancel: cancel, conns: conns}
	s.client = client.NewClient(tr, c.clientOptionsFor(run)...)
	if err := s.client.Start(sessCtx); err != nil {
		s.close()
		return nil, err
	}
	s.client.OnNotification(func(n mcp.JSONRPCNotification) { c.onRunNotification(s, run, n) })
	req := mcp.InitializeRequest{}
	req.Params.ClientInfo = clientInfo
	if _, err := s.client.Initialize(ctx, req); err != nil {
		s.close()
		return nil, err
	}
	c.takeAllLogs(ctx, s)
	c.log.Debug("run session opened", "run_id", run)
	return s, nil
}
