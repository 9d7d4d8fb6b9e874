package agentauth

import (
	"context"
	"fmt"

	"github.com/agentauth/agentauth/agentauth/control/api"
)

// Child is a run delegated from this one, not joined yet: hand Enrollment
// to the process that acts as the child (Enrollment.Environ for its
// environment). Its bootstrap token works once and expires in minutes.
type Child struct {
	Run        api.Run
	Enrollment Enrollment
}

// Delegate starts a child run whose grants narrow this run's.
func (r *Run) Delegate(ctx context.Context, req api.DelegateRequest) (Child, error) {
	resp, err := r.Control().delegate(ctx, r.ID(), req)
	if err != nil {
		return Child{}, fmt.Errorf("agentauth: delegate to %s: %w", req.Agent, err)
	}
	e := r.Enrollment()
	e.BootstrapToken, e.RunID, e.SPIFFEID = resp.BootstrapToken, resp.Run.ID, resp.Run.SPIFFEID
	e.ExpiresAt = resp.Run.ExpiresAt
	return Child{Run: resp.Run, Enrollment: e}, nil
}
