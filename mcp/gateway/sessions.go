package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/server"
)

// sessions binds every MCP session id to the SPIFFE ID that created it.
// Another caller presenting that id is answered exactly as for an id that
// was never issued.
type sessions struct {
	mu    sync.Mutex
	owner map[string]string // session id -> SPIFFE ID
	// served holds, by session id, when mcp-go last served a request of the
	// session (an *atomic.Int64 of Unix nanoseconds), which also keeps
	// mcp-go's idle timer from ending it.
	served sync.Map
}

// touch records that mcp-go serves a request of session sid now.
func (s *sessions) touch(sid string, now time.Time) {
	v, ok := s.served.Load(sid)
	if !ok {
		v, _ = s.served.LoadOrStore(sid, new(atomic.Int64))
	}
	v.(*atomic.Int64).Store(now.UnixNano())
}

// servedWithin reports whether mcp-go served a request of session sid
// less than d before now.
func (s *sessions) servedWithin(sid string, now time.Time, d time.Duration) bool {
	v, ok := s.served.Load(sid)
	return ok && now.Sub(time.Unix(0, v.(*atomic.Int64).Load())) < d
}

func newSessions() *sessions { return &sessions{owner: map[string]string{}} }

// ownedBy reports whether id exists and belongs to caller.
func (s *sessions) ownedBy(id, caller string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	owner, ok := s.owner[id]
	return ok && owner == caller
}

func (s *sessions) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.owner)
}

// ResolveSessionIdManager returns a manager bound to the request's caller.
// A nil request (mcp-go's idle sweeper) gets a manager that may only end
// sessions.
func (s *sessions) ResolveSessionIdManager(r *http.Request) server.SessionIdManager {
	m := &boundSessions{s: s}
	if r != nil {
		if c, ok := CallerFromContext(r.Context()); ok {
			m.caller = c.ID.String()
		}
	}
	return m
}

// boundSessions is the SessionIdManager for one caller.
type boundSessions struct {
	s      *sessions
	caller string // empty: system (the idle sweeper)
}

var errNoSession = errors.New("session not found")

// Generate issues a fresh 128-bit session id owned by the caller.
func (b *boundSessions) Generate() string {
	if b.caller == "" {
		return ""
	}
	buf := make([]byte, 16)
	_, _ = rand.Read(buf)
	id := "mcp-session-" + hex.EncodeToString(buf)
	b.s.mu.Lock()
	b.s.owner[id] = b.caller
	b.s.mu.Unlock()
	return id
}

// Validate accepts only the caller's own live sessions.
func (b *boundSessions) Validate(id string) (bool, error) {
	if b.caller == "" || !b.s.ownedBy(id, b.caller) {
		return false, errNoSession
	}
	return false, nil
}

// Terminate ends the caller's own session.
func (b *boundSessions) Terminate(id string) (bool, error) {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	owner, ok := b.s.owner[id]
	if !ok || (b.caller != "" && owner != b.caller) {
		return false, errNoSession
	}
	delete(b.s.owner, id)
	b.s.served.Delete(id)
	return false, nil
}
