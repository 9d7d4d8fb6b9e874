package control

import (
	"crypto/rand"
	"encoding/base64"
	"sync"
	"time"

	"github.com/agentauth/agentauth/agentauth/control/api"
)

// session is a signed-in person on the approvals page.
type session struct {
	Sponsor api.Sponsor
	CSRF    string
	expires time.Time
}

// login is an authorization code flow in progress, keyed by its state.
type login struct {
	Verifier string // PKCE code verifier
	Nonce    string
	expires  time.Time
}

// sessionStore keeps sessions and logins in memory: a gateway restart
// signs everyone out, which is the safe direction.
type sessionStore struct {
	ttl time.Duration
	now func() time.Time

	mu       sync.Mutex
	sessions map[string]session
	logins   map[string]login
}

func newSessionStore(ttl time.Duration, now func() time.Time) *sessionStore {
	return &sessionStore{ttl: ttl, now: now, sessions: map[string]session{}, logins: map[string]login{}}
}

func randomID() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// maxPending bounds logins and sessions so unauthenticated requests
// cannot grow memory without limit.
const maxPending = 10000

func (s *sessionStore) startLogin(l login) (string, bool) {
	state := randomID()
	l.expires = s.now().Add(10 * time.Minute)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked()
	if len(s.logins) >= maxPending {
		return "", false
	}
	s.logins[state] = l
	return state, true
}

func (s *sessionStore) finishLogin(state string) (login, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.logins[state]
	delete(s.logins, state)
	return l, ok && s.now().Before(l.expires)
}

func (s *sessionStore) create(sp api.Sponsor) (string, session, bool) {
	id := randomID()
	sess := session{Sponsor: sp, CSRF: randomID(), expires: s.now().Add(s.ttl)}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked()
	if len(s.sessions) >= maxPending {
		return "", session{}, false
	}
	s.sessions[id] = sess
	return id, sess, true
}

func (s *sessionStore) get(id string) (session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[id]
	if ok && !s.now().Before(sess.expires) {
		delete(s.sessions, id)
		return session{}, false
	}
	return sess, ok
}

func (s *sessionStore) delete(id string) {
	s.mu.Lock()
	delete(s.sessions, id)
	s.mu.Unlock()
}

func (s *sessionStore) sweepLocked() {
	now := s.now()
	for k, v := range s.logins {
		if !now.Before(v.expires) {
			delete(s.logins, k)
		}
	}
	for k, v := range s.sessions {
		if !now.Before(v.expires) {
			delete(s.sessions, k)
		}
	}
}
