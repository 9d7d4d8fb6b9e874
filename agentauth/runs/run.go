package runs

import (
	"time"

	"github.com/agentauth/agentauth/agentauth/policy"
)

// Status is the state of a run.
type Status string

// The states of a run. An expired run is one whose expiry has passed,
// even while the store still records it as active.
const (
	StatusActive  Status = "active"
	StatusExpired Status = "expired"
	StatusRevoked Status = "revoked"
)

// Sponsor is an authenticated human.
type Sponsor struct {
	// Issuer is the OIDC issuer, or "local" for an OS user of the embedded
	// default.
	Issuer string `json:"issuer"`
	// Subject is the OIDC subject, or the OS username.
	Subject string            `json:"subject"`
	Email   string            `json:"email,omitempty"`
	Groups  []string          `json:"groups,omitempty"`
	Claims  map[string]string `json:"claims,omitempty"`
}

// LocalIssuer is the issuer of local OS users.
const LocalIssuer = "local"

// Identity returns the fields policy selectors match.
func (s Sponsor) Identity() policy.Identity {
	return policy.Identity{Issuer: s.Issuer, Subject: s.Subject, Email: s.Email,
		Groups: s.Groups, Claims: s.Claims}
}

// Key identifies the sponsor across logins.
func (s Sponsor) Key() SponsorKey { return SponsorKey{Issuer: s.Issuer, Subject: s.Subject} }

// Name returns a short name for messages: the subject, with the issuer
// unless it is local.
func (s Sponsor) Name() string {
	if s.Issuer == LocalIssuer || s.Issuer == "" {
		return s.Subject
	}
	return s.Subject + " (" + s.Issuer + ")"
}

// SponsorKey identifies a sponsor.
type SponsorKey struct {
	Issuer  string `json:"issuer"`
	Subject string `json:"subject"`
}

// Run is one execution of an agent for one sponsor and one purpose.
type Run struct {
	ID       string  `json:"id"`
	ParentID string  `json:"parent_id,omitempty"`
	Agent    string  `json:"agent"`
	SPIFFEID string  `json:"spiffe_id"`
	Sponsor  Sponsor `json:"sponsor"`
	Purpose  string  `json:"purpose"`
	// Grants lists the grant ids the run was given.
	Grants []string `json:"grants"`
	// Budgets caps calls per grant id; a grant absent here has no cap.
	Budgets map[string]int64 `json:"budgets,omitempty"`
	// Depth is 0 for a run a sponsor started, parent's depth + 1 otherwise.
	Depth   int       `json:"depth"`
	Created time.Time `json:"created"`
	Expiry  time.Time `json:"expiry"`
	Status  Status    `json:"status"`
	// StatusReason is the reason given when the run was revoked.
	StatusReason  string    `json:"status_reason,omitempty"`
	StatusChanged time.Time `json:"status_changed,omitzero"`
	// BreakGlass marks a run a human started with a break-glass grant.
	BreakGlass       bool   `json:"break_glass,omitempty"`
	BreakGlassReason string `json:"break_glass_reason,omitempty"`
}

// StatusAt returns the run's status at t, counting expiry.
func (r *Run) StatusAt(t time.Time) Status {
	if r.Status == StatusActive && !t.Before(r.Expiry) {
		return StatusExpired
	}
	return r.Status
}

// BudgetUse is how many calls a run has made under one grant.
type BudgetUse struct {
	RunID   string
	GrantID string
	Used    int64
}

// RunFilter selects runs to list. Zero fields select everything.
type RunFilter struct {
	Sponsor    *SponsorKey
	Agent      string
	Status     Status // active, revoked or expired
	BreakGlass bool   // only break-glass runs
	ParentID   string
	Limit      int
	Now        time.Time
}
