package control

import (
	"context"
	"crypto/x509"
	"errors"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agentauth/agentauth/agentauth/control/api"
)

// Errors that services return (wrapped) so that the control API can reply
// with the right status. The wrapping error's text is shown to the caller,
// so it must name what failed and the fix, and contain no secret.
var (
	ErrNotFound  = errors.New("not found")
	ErrForbidden = errors.New("forbidden")
	ErrInvalid   = errors.New("invalid")
	ErrConflict  = errors.New("conflict")
	// ErrNotEntitled means policy does not let the sponsor hand out a grant.
	ErrNotEntitled = errors.New("not entitled")
)

// RunRequest describes a run to start or delegate.
type RunRequest struct {
	Agent   string
	Grants  []string
	Purpose string
	TTL     time.Duration // zero takes the policy's default
}

// RunFilter narrows ListRuns. Empty fields match everything.
type RunFilter struct {
	Status         string
	Agent          string
	SponsorIssuer  string
	SponsorSubject string
	Limit          int
}

// Runs is the run service the control API drives.
type Runs interface {
	// StartRun starts a top-level run for the sponsor.
	StartRun(ctx context.Context, sponsor api.Sponsor, req RunRequest) (api.Run, error)
	// Delegate starts a child run of parentID, narrowing its grants.
	Delegate(ctx context.Context, parentID string, req RunRequest) (api.Run, error)
	// GetRun returns a run with its delegation chain.
	GetRun(ctx context.Context, id string) (api.Run, error)
	// ListRuns returns runs, newest first.
	ListRuns(ctx context.Context, f RunFilter) ([]api.Run, error)
	// Revoke stops a run and every run it delegated.
	Revoke(ctx context.Context, id string, by api.Sponsor, reason string) error
	// BreakGlass starts a break-glass run holding one grant for the sponsor.
	BreakGlass(ctx context.Context, by api.Sponsor, grant, agent, reason string,
		ttl time.Duration) (api.Run, error)
	// DeactivateSponsor offboards a human and stops every run they sponsored.
	DeactivateSponsor(ctx context.Context, issuer, subject string, by api.Sponsor,
		reason string) error
	// ReactivateSponsor lets a deactivated human start runs again; the
	// runs the deactivation stopped stay stopped.
	ReactivateSponsor(ctx context.Context, issuer, subject string, by api.Sponsor) error
}

// Approvals is the step-up approval service.
type Approvals interface {
	// ListApprovals returns the approvals with the given status ("pending"
	// when empty) that the viewer may decide or that are on the viewer's
	// own runs.
	ListApprovals(ctx context.Context, viewer api.Sponsor, status string) ([]api.Approval, error)
	// GetApproval returns one approval.
	GetApproval(ctx context.Context, id string) (api.Approval, error)
	// Approve records that a human approved the call. The service decides
	// who may: the run's sponsor or a member of a policy role.
	Approve(ctx context.Context, id string, by api.Sponsor, comment string) (api.Approval, error)
	// Deny records that a human denied the call.
	Deny(ctx context.Context, id string, by api.Sponsor, comment string) (api.Approval, error)
}

// Signer signs run X.509-SVIDs from CSRs that the agent makes, so the
// gateway never holds a run's private key.
type Signer interface {
	// SignRunCSR returns the certificate chain, leaf first, for id with the
	// public key of the DER-encoded CSR, valid until notAfter at the latest.
	SignRunCSR(ctx context.Context, csrDER []byte, id spiffeid.ID,
		notAfter time.Time) ([]*x509.Certificate, error)
}
