package runs

import (
	"context"
	"time"
)

// Store persists runs, budgets, sponsor status and approvals. The SQLite
// store in agentauth/store implements it. Every method is safe for
// concurrent use.
type Store interface {
	// LoadState returns what a Manager needs at start: every run whose
	// expiry is after since, ordered by depth so that parents come before
	// their children, with their budget use, the
	// inactive sponsors and the approvals that expire after since.
	LoadState(ctx context.Context, since time.Time) (State, error)
	// InsertRun stores a new run.
	InsertRun(ctx context.Context, r Run) error
	// SetRunStatus sets the status of every listed run in one transaction.
	SetRunStatus(ctx context.Context, ids []string, status Status, reason string, at time.Time) error
	// SetSponsorActive records whether a sponsor is active.
	SetSponsorActive(ctx context.Context, k SponsorKey, active bool, at time.Time) error
	// SaveBudgets records budget use; a later value replaces an earlier one.
	SaveBudgets(ctx context.Context, uses []BudgetUse) error
	// PutApproval inserts or replaces an approval.
	PutApproval(ctx context.Context, a Approval) error
	// ListRuns returns the runs the filter selects, newest first.
	ListRuns(ctx context.Context, f RunFilter) ([]Run, error)
	// GetRun returns one run, or an error wrapping ErrNotFound.
	GetRun(ctx context.Context, id string) (Run, error)
	// ListApprovals returns approvals, newest first.
	ListApprovals(ctx context.Context, f ApprovalFilter) ([]Approval, error)
}

// State is the persisted state a Manager loads at start.
type State struct {
	Runs             []Run
	Budgets          []BudgetUse
	InactiveSponsors []SponsorKey
	Approvals        []Approval
}
