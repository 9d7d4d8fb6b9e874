package runs

import (
	"context"
	"fmt"
)

// GetRun returns a run with its status at the current time.
func (m *Manager) GetRun(ctx context.Context, id string) (Run, error) {
	m.mu.RLock()
	l := m.runs[id]
	var r Run
	if l != nil {
		r = l.run
	}
	m.mu.RUnlock()
	if l == nil {
		var err error
		if r, err = m.store.GetRun(ctx, id); err != nil {
			return Run{}, err
		}
	}
	r.Status = r.StatusAt(m.now())
	return r, nil
}

// GetChain returns the run and its ancestors, root first.
func (m *Manager) GetChain(ctx context.Context, id string) ([]Run, error) {
	var chain []Run
	for id != "" {
		if len(chain) > 64 {
			return nil, fmt.Errorf("runs: chain of %s is longer than 64 runs", id)
		}
		r, err := m.GetRun(ctx, id)
		if err != nil {
			return nil, err
		}
		chain = append([]Run{r}, chain...)
		id = r.ParentID
	}
	return chain, nil
}

// ListRuns returns runs from the store, newest first, with their status
// at the current time.
func (m *Manager) ListRuns(ctx context.Context, f RunFilter) ([]Run, error) {
	f.Now = m.now()
	list, err := m.store.ListRuns(ctx, f)
	if err != nil {
		return nil, err
	}
	for i := range list {
		list[i].Status = list[i].StatusAt(f.Now)
	}
	return list, nil
}
