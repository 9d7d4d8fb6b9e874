package control

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"sync"
	"time"
)

// bootstrapPrefix starts every bootstrap token, so scanners can spot one.
const bootstrapPrefix = "aabt_"

// enrollment is the right a bootstrap token grants: the SVID of one run.
type enrollment struct {
	RunID    string
	Agent    string
	NotAfter time.Time // the run's expiry
	expires  time.Time // the token's expiry
}

// bootstrapStore keeps bootstrap tokens by their SHA-256 hash only, so a
// copy of the store reveals no usable token. Each token works once.
// NOTE: tokens live in memory, so a gateway restart voids the ones not
// yet exchanged; the run then has to be started again.
type bootstrapStore struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	pending map[[32]byte]enrollment
}

func newBootstrapStore(ttl time.Duration, now func() time.Time) *bootstrapStore {
	return &bootstrapStore{ttl: ttl, now: now, pending: map[[32]byte]enrollment{}}
}

// Issue returns a new token for e and its expiry.
func (b *bootstrapStore) Issue(e enrollment) (string, time.Time) {
	var raw [32]byte
	_, _ = rand.Read(raw[:]) // crypto/rand.Read never fails
	tok := bootstrapPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	now := b.now()
	e.expires = now.Add(b.ttl)
	if e.expires.After(e.NotAfter) {
		e.expires = e.NotAfter
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, p := range b.pending {
		if !now.Before(p.expires) {
			delete(b.pending, k)
		}
	}
	b.pending[sha256.Sum256([]byte(tok))] = e
	return tok, e.expires
}

// Redeem consumes tok. It reports false for an unknown, used or expired
// token.
func (b *bootstrapStore) Redeem(tok string) (enrollment, bool) {
	if !strings.HasPrefix(tok, bootstrapPrefix) || len(tok) > 128 {
		return enrollment{}, false
	}
	h := sha256.Sum256([]byte(tok))
	b.mu.Lock()
	e, ok := b.pending[h]
	delete(b.pending, h)
	b.mu.Unlock()
	if !ok || !b.now().Before(e.expires) {
		return enrollment{}, false
	}
	return e, true
}
