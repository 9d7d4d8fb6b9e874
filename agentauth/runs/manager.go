package runs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/agentauth/agentauth/agentauth/policy"
)

// Defaults for Options fields left zero.
const (
	DefaultRunTTL      = time.Hour
	MaxRunTTL          = 24 * time.Hour
	DefaultApprovalTTL = 15 * time.Minute
	// retainEnded is how long ended runs stay in memory, so calls from a
	// revoked or expired run get that reason instead of run_unknown.
	retainEnded = 24 * time.Hour
)

// Options configure a Manager.
type Options struct {
	// TrustDomain is the SPIFFE trust domain run IDs are minted in.
	TrustDomain string
	Store       Store
	Policy      *policy.Policy
	// Recorder receives every event; nil drops them.
	Recorder Recorder
	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// ApprovalTTL is how long an approval request stays valid.
	ApprovalTTL time.Duration
}

// Manager owns every run, sponsor status and approval. Its methods are
// safe for concurrent use.
type Manager struct {
	td       string
	store    Store
	rec      Recorder
	log      *slog.Logger
	now      func() time.Time
	approval time.Duration

	mu        sync.RWMutex
	policy    *policy.Policy
	runs      map[string]*Live
	bySPIFFE  map[string]*Live
	children  map[string][]*Live
	sponsors  map[SponsorKey]*sponsorState
	approvals map[string]*pendingApproval
	// pending indexes pending approvals by the call they are for.
	pending map[approvalKey]string
}

// Open loads the state the store holds and returns a Manager over it.
func Open(ctx context.Context, o Options) (*Manager, error) {
	if o.Store == nil || o.Policy == nil || o.TrustDomain == "" {
		return nil, errors.New("runs: Options need Store, Policy and TrustDomain")
	}
	m := &Manager{
		td: o.TrustDomain, store: o.Store, rec: o.Recorder, log: o.Logger, now: o.Now,
		approval: o.ApprovalTTL, policy: o.Policy,
		runs: map[string]*Live{}, bySPIFFE: map[string]*Live{}, children: map[string][]*Live{},
		sponsors: map[SponsorKey]*sponsorState{}, approvals: map[string]*pendingApproval{},
		pending: map[approvalKey]string{},
	}
	if m.rec == nil {
		m.rec = nopRecorder{}
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.approval <= 0 {
		m.approval = DefaultApprovalTTL
	}
	if err := m.load(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Manager) load(ctx context.Context) error {
	st, err := m.store.LoadState(ctx, m.now().Add(-retainEnded))
	if err != nil {
		return fmt.Errorf("runs: load state: %w", err)
	}
	for _, k := range st.InactiveSponsors {
		m.sponsorLocked(k).inactive.Store(true)
	}
	// The store returns runs by depth, so parents come before children.
	for _, r := range st.Runs {
		var parent *Live
		if r.ParentID != "" {
			if parent = m.runs[r.ParentID]; parent == nil {
				m.log.Warn("run skipped at load: parent missing", "run", r.ID, "parent", r.ParentID)
				continue
			}
		}
		m.addLocked(r, parent)
	}
	for _, u := range st.Budgets {
		if l := m.runs[u.RunID]; l != nil && l.budgets[u.GrantID] != nil {
			l.budgets[u.GrantID].used.Store(u.Used)
		}
	}
	for _, a := range st.Approvals {
		p := &pendingApproval{a: a, done: make(chan struct{})}
		if a.Status == ApprovalPending {
			m.pending[keyOf(&a)] = a.ID
		} else {
			close(p.done)
		}
		m.approvals[a.ID] = p
	}
	return nil
}

// addLocked puts a run into memory; m.mu must be held for writing, or the
// Manager not yet shared.
func (m *Manager) addLocked(r Run, parent *Live) *Live {
	l := &Live{run: r, parent: parent, sponsor: m.sponsorLocked(r.Sponsor.Key()),
		budgets: map[string]*budget{}}
	for _, g := range r.Grants {
		l.budgets[g] = &budget{limit: r.Budgets[g]}
	}
	if parent != nil {
		l.chain = append(append([]policy.Hop(nil), parent.chain...), hopOf(r))
		parent.children++
		m.children[parent.run.ID] = append(m.children[parent.run.ID], l)
	} else {
		l.chain = []policy.Hop{hopOf(r)}
	}
	l.revoked.Store(r.Status == StatusRevoked)
	l.view.Store(m.viewOf(m.policy, l))
	m.runs[r.ID] = l
	m.bySPIFFE[r.SPIFFEID] = l
	return l
}

func hopOf(r Run) policy.Hop {
	return policy.Hop{RunID: r.ID, Agent: r.Agent, SPIFFEID: r.SPIFFEID}
}

func (m *Manager) viewOf(p *policy.Policy, l *Live) *view {
	var pv *view
	if l.parent != nil {
		pv = l.parent.view.Load()
	}
	v := buildView(p, &l.run, pv)
	v.depthOK = v.depthOK && depthAllowed(p, l)
	return v
}

// depthAllowed checks the run's depth against every ancestor's agent.
func depthAllowed(p *policy.Policy, l *Live) bool {
	for a := l.parent; a != nil; a = a.parent {
		agent := p.Agents[a.run.Agent]
		if agent == nil || l.run.Depth-a.run.Depth > agent.MaxDelegationDepth {
			return false
		}
	}
	return true
}

func (m *Manager) sponsorLocked(k SponsorKey) *sponsorState {
	s := m.sponsors[k]
	if s == nil {
		s = &sponsorState{}
		m.sponsors[k] = s
	}
	return s
}

// SetPolicy puts a new policy in force and recomputes every run's
// effective grants under it, parents before children.
func (m *Manager) SetPolicy(p *policy.Policy) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.policy = p
	for _, l := range m.runs {
		if l.parent == nil {
			m.refreshLocked(p, l)
		}
	}
}

func (m *Manager) refreshLocked(p *policy.Policy, l *Live) {
	l.view.Store(m.viewOf(p, l))
	for _, c := range m.children[l.run.ID] {
		m.refreshLocked(p, c)
	}
}

// Policy returns the policy in force.
func (m *Manager) Policy() *policy.Policy {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.policy
}

// TrustDomain returns the trust domain run SPIFFE IDs are minted in.
func (m *Manager) TrustDomain() string { return m.td }

// Lookup returns the in-memory run by id. It is the authorizer's hot path.
func (m *Manager) Lookup(runID string) (*Live, bool) {
	m.mu.RLock()
	l, ok := m.runs[runID]
	m.mu.RUnlock()
	return l, ok
}

// LookupSPIFFE returns the in-memory run whose SPIFFE ID is id.
func (m *Manager) LookupSPIFFE(id string) (*Live, bool) {
	m.mu.RLock()
	l, ok := m.bySPIFFE[id]
	m.mu.RUnlock()
	return l, ok
}

// Maintain flushes budget use to the store every interval and drops runs
// that ended long ago from memory, until ctx is done; then it flushes once
// more. Run it in its own goroutine.
func (m *Manager) Maintain(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := m.FlushBudgets(context.WithoutCancel(ctx)); err != nil {
				m.log.Error("flush budgets at stop failed", "error", err)
			}
			return
		case <-t.C:
			if err := m.FlushBudgets(ctx); err != nil {
				m.log.Error("flush budgets failed; will retry", "error", err)
			}
			m.sweep()
		}
	}
}

// FlushBudgets writes changed budget counters to the store.
//
// NOTE: counters are written behind the calls they count, so a crash
// loses the calls of the last interval; a restart after a clean stop loses
// none.
func (m *Manager) FlushBudgets(ctx context.Context) error {
	var uses []BudgetUse
	var flagged []*budget
	m.mu.RLock()
	for _, l := range m.runs {
		for g, b := range l.budgets {
			if b.dirty.Swap(false) {
				uses = append(uses, BudgetUse{RunID: l.run.ID, GrantID: g, Used: b.used.Load()})
				flagged = append(flagged, b)
			}
		}
	}
	m.mu.RUnlock()
	if len(uses) == 0 {
		return nil
	}
	if err := m.store.SaveBudgets(ctx, uses); err != nil {
		for _, b := range flagged {
			b.dirty.Store(true)
		}
		return err
	}
	return nil
}

// sweep drops runs whose whole subtree ended, and approvals that expired,
// more than retainEnded ago. The store keeps them.
func (m *Manager) sweep() {
	cutoff := m.now().Add(-retainEnded)
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, l := range m.runs {
		if l.parent == nil && l.run.Expiry.Before(cutoff) {
			m.dropLocked(id, l)
		}
	}
	for id, p := range m.approvals {
		if p.a.Expires.Before(cutoff) {
			delete(m.approvals, id)
			if m.pending[keyOf(&p.a)] == id {
				delete(m.pending, keyOf(&p.a))
			}
		}
	}
}

func (m *Manager) dropLocked(id string, l *Live) {
	for _, c := range m.children[id] {
		m.dropLocked(c.run.ID, c)
	}
	delete(m.children, id)
	delete(m.runs, id)
	delete(m.bySPIFFE, l.run.SPIFFEID)
}

func (m *Manager) record(ctx context.Context, e Event) {
	if e.Time.IsZero() {
		e.Time = m.now()
	}
	m.rec.Record(ctx, e)
}

// Now returns the current time of the Manager's clock.
func (m *Manager) Now() time.Time { return m.now() }

// Logger returns the manager's logger, which components deciding on its
// runs (such as the authorizer) share.
func (m *Manager) Logger() *slog.Logger { return m.log }
