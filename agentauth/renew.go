package agentauth

import (
	"context"
	"time"
)

// renewLoop renews the SVID once half of its lifetime has passed, and
// retries a failed renewal with backoff until the SVID expires.
func (r *Run) renewLoop(ctx context.Context) {
	defer close(r.done)
	for {
		wait := r.renewIn(time.Now())
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if err := r.Renew(ctx); err != nil {
			r.log.Warn("agentauth: SVID renewal failed; retrying", "run", r.ID(), "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(retryDelay(r, time.Now())):
			}
			continue
		}
		r.log.Info("agentauth: SVID renewed", "run", r.ID(), "expires", r.notAfter())
	}
}

func (r *Run) notAfter() time.Time {
	s, _ := r.GetX509SVID()
	return s.Certificates[0].NotAfter
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

func retryDelay(r *Run, now time.Time) time.Duration {
	left := r.notAfter().Sub(now)
	return min(max(left/10, time.Second), 30*time.Second)
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
