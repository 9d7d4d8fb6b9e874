package agentauth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/agentauth/agentauth/agentauth/control/api"
)

// ErrRunExpired is the reason renewal stopped when the run (or its last
// SVID) reached its expiry.
var ErrRunExpired = errors.New("agentauth: the run has expired; start a new run")

// ErrRunClosed is the reason renewal stopped when Close was called.
var ErrRunClosed = errors.New("agentauth: the run was closed")

// Renewal retry bounds: a failed renewal is retried after retryMin,
// doubling up to retryMax, and never after the SVID has expired.
const (
	retryMin = time.Second
	retryMax = 30 * time.Second
)

// renewLoop renews the SVID once half of its lifetime has passed. It
// stops renewing once the SVID lasts until the run's expiry, and ends
// when the run expires, the gateway rejects a renewal, or ctx ends.
func (r *Run) renewLoop(ctx context.Context) {
	defer close(r.done)
	r.end(r.renew(ctx))
}

// renew runs the renewal schedule and returns why it ended.
func (r *Run) renew(ctx context.Context) error {
	for !r.lastSVID() {
		if !sleep(ctx, r.renewIn(time.Now())) {
			return ErrRunClosed
		}
		if err := r.renewWithRetry(ctx); err != nil {
			return err
		}
	}
	// The SVID lasts as long as the run, so only the run's end remains.
	if !sleep(ctx, time.Until(r.notAfter())) {
		return ErrRunClosed
	}
	return ErrRunExpired
}

// renewWithRetry renews once, retrying transient failures with bounded
// exponential backoff while the current SVID is still valid.
func (r *Run) renewWithRetry(ctx context.Context) error {
	before := r.notAfter()
	for delay := retryMin; ; delay = min(delay*2, retryMax) {
		err := r.Renew(ctx)
		if err == nil {
			r.noteRenewal(before)
			return nil
		}
		if ctx.Err() != nil {
			return ErrRunClosed
		}
		if rejected(err) {
			return fmt.Errorf("agentauth: the gateway rejected the renewal of run %s; start a new run: %w", r.ID(), err)
		}
		left := time.Until(r.notAfter())
		if left <= 0 {
			return fmt.Errorf("%w (last renewal error: %v)", ErrRunExpired, err)
		}
		wait := min(delay, left)
		r.log.Warn("agentauth: SVID renewal failed; retrying", "run", r.ID(), "retry_in", wait, "err", err)
		if !sleep(ctx, wait) {
			return ErrRunClosed
		}
	}
}

// noteRenewal logs a renewal and learns the run's expiry when the new SVID
// ends no later than the previous one. The gateway caps SVIDs at the
// run's expiry, so such an SVID ends with the run.
func (r *Run) noteRenewal(before time.Time) {
	after := r.notAfter()
	r.log.Info("agentauth: SVID renewed", "run", r.ID(), "expires", after)
	if !after.After(before) {
		r.mu.Lock()
		if r.expires.IsZero() || after.Before(r.expires) {
			r.expires = after
		}
		r.mu.Unlock()
	}
}

// rejected reports whether the gateway rejected the renewal for good
// because the run is revoked, expired or unknown, or its SVID is no
// longer accepted.
func rejected(err error) bool {
	return IsCode(err, api.CodeForbidden) || IsCode(err, api.CodeUnauthenticated) ||
		IsCode(err, api.CodeNotFound)
}

// end records why renewal stopped and logs it once: at info level when
// the run simply expired, as a warning when the gateway rejected it.
func (r *Run) end(err error) {
	r.mu.Lock()
	r.err = err
	r.mu.Unlock()
	switch {
	case errors.Is(err, ErrRunClosed):
	case errors.Is(err, ErrRunExpired):
		r.log.Info("agentauth: the run's SVID will not be renewed again", "run", r.ID(), "err", err)
	default:
		r.log.Warn("agentauth: the run's SVID will not be renewed again", "run", r.ID(), "err", err)
	}
}

// sleep waits d or until ctx ends, reporting whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(max(d, 0))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Done returns a channel that is closed when the run stops renewing its
// SVID, because the run expired, the gateway rejected a renewal (the run
// was revoked) or Close was called. Err then returns the reason.
func (r *Run) Done() <-chan struct{} { return r.done }

// Err returns nil while the run keeps its SVID fresh; after Done is
// closed it returns ErrRunExpired, ErrRunClosed or the gateway's
// rejection (an *APIError, found with errors.As).
func (r *Run) Err() error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.err
}

func (r *Run) notAfter() time.Time {
	s, _ := r.GetX509SVID()
	return s.Certificates[0].NotAfter
}

// lastSVID reports whether the current SVID already lasts until the
// run's expiry, so renewing would not extend it. Certificate times have
// whole seconds, so an SVID capped at the run's expiry may end up to a
// second before it.
func (r *Run) lastSVID() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return !r.expires.IsZero() && !r.svid.Certificates[0].NotAfter.Before(r.expires.Add(-time.Second))
}

// renewIn returns how long to wait before renewing: half the time the
// SVID had left when it arrived. NotBefore is not used because CAs
// backdate it to allow for clock skew.
func (r *Run) renewIn(now time.Time) time.Duration {
	r.mu.RLock()
	got, leaf := r.gotAt, r.svid.Certificates[0]
	r.mu.RUnlock()
	at := got.Add(leaf.NotAfter.Sub(got) / 2)
	return max(at.Sub(now), 0)
}

// Renew replaces the run's key and SVID now: a new key in memory, a CSR
// sent over mTLS with the current SVID.
func (r *Run) Renew(ctx context.Context) error {
	key, csr, err := newKeyAndCSR()
	if err != nil {
		return err
	}
	svid, err := r.Control().renew(ctx, csr)
	if err != nil {
		return err
	}
	if err := r.install(key, svid); err != nil {
		return err
	}
	select {
	case r.renewed <- struct{}{}:
	default:
	}
	return nil
}
