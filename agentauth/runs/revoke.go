package runs

import (
	"context"
	"fmt"
	"time"
)

// Revoke stops a run and every run it delegated, at once. actor is the
// human revoking it; reason is kept with the runs.
func (m *Manager) Revoke(ctx context.Context, actor Sponsor, runID, reason string) ([]string, error) {
	if len(reason) > MaxPurposeBytes {
		return nil, newError(ErrInvalid, "reason is over the length limit")
	}
	now := m.now()
	m.mu.Lock()
	l := m.runs[runID]
	if l == nil {
		m.mu.Unlock()
		return nil, newError(ErrNotFound, fmt.Sprintf("run %q not found", runID))
	}
	var subtree []*Live
	m.collectLocked(l, &subtree)
	ids, err := m.stopLocked(ctx, subtree, reason, now)
	m.mu.Unlock()
	if err != nil {
		return nil, err
	}
	m.log.Info("run revoked", "run", runID, "stopped", len(ids), "by", actor.Name())
	m.record(ctx, Event{Type: EventRunRevoked, Actor: &actor, Sponsor: &l.run.Sponsor, RunID: runID,
		Agent: l.run.Agent, SPIFFEID: l.run.SPIFFEID, RunIDs: ids, Message: reason})
	return ids, nil
}

func (m *Manager) collectLocked(l *Live, out *[]*Live) {
	*out = append(*out, l)
	for _, c := range m.children[l.run.ID] {
		m.collectLocked(c, out)
	}
}

// stopLocked marks runs revoked, in memory at once and in the store. The
// memory flag is set first so no call slips through while the store
// writes; if the store fails the runs stay stopped in memory and the
// error is returned.
func (m *Manager) stopLocked(ctx context.Context, ls []*Live, reason string, now time.Time) ([]string, error) {
	var ids []string
	for _, l := range ls {
		if l.revoked.Load() {
			continue
		}
		l.revoked.Store(true)
		l.run.Status, l.run.StatusReason, l.run.StatusChanged = StatusRevoked, reason, now
		ids = append(ids, l.run.ID)
	}
	if len(ids) == 0 {
		return ids, nil
	}
	if err := m.store.SetRunStatus(ctx, ids, StatusRevoked, reason, now); err != nil {
		m.log.Error("store revocation failed; runs stay stopped in memory", "runs", len(ids), "error", err)
		return ids, fmt.Errorf("runs: store revocation of %d runs: %w", len(ids), err)
	}
	return ids, nil
}

// DeactivateSponsor offboards a sponsor: every run they sponsored stops
// and they can start no new run until reactivated.
func (m *Manager) DeactivateSponsor(ctx context.Context, actor Sponsor, k SponsorKey, reason string) ([]string, error) {
	now := m.now()
	m.mu.Lock()
	m.sponsorLocked(k).inactive.Store(true)
	err := m.store.SetSponsorActive(ctx, k, false, now)
	var ids []string
	if err == nil {
		var theirs []*Live
		for _, l := range m.runs {
			if l.run.Sponsor.Key() == k {
				theirs = append(theirs, l)
			}
		}
		ids, err = m.stopLocked(ctx, theirs, "sponsor deactivated: "+reason, now)
	}
	m.mu.Unlock()
	if err != nil {
		return ids, err
	}
	s := Sponsor{Issuer: k.Issuer, Subject: k.Subject}
	m.log.Info("sponsor deactivated", "sponsor", s.Name(), "runs_stopped", len(ids), "by", actor.Name())
	m.record(ctx, Event{Type: EventSponsorDeactivated, Actor: &actor, Sponsor: &s, RunIDs: ids, Message: reason})
	return ids, nil
}

// ReactivateSponsor lets a deactivated sponsor start runs again. Runs
// stopped by the deactivation stay stopped.
func (m *Manager) ReactivateSponsor(ctx context.Context, actor Sponsor, k SponsorKey) error {
	m.mu.Lock()
	err := m.store.SetSponsorActive(ctx, k, true, m.now())
	if err == nil {
		m.sponsorLocked(k).inactive.Store(false)
	}
	m.mu.Unlock()
	if err != nil {
		return err
	}
	s := Sponsor{Issuer: k.Issuer, Subject: k.Subject}
	m.record(ctx, Event{Type: EventSponsorReactivated, Actor: &actor, Sponsor: &s})
	return nil
}

// SponsorActive reports whether the sponsor is active.
func (m *Manager) SponsorActive(k SponsorKey) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := m.sponsors[k]
	return s == nil || !s.inactive.Load()
}
