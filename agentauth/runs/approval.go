package runs

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// ApprovalStatus is the state of an approval request.
type ApprovalStatus string

// The states of an approval. Only an approved, unused, unexpired approval
// lets a call through, once.
const (
	ApprovalPending  ApprovalStatus = "pending"
	ApprovalApproved ApprovalStatus = "approved"
	ApprovalDenied   ApprovalStatus = "denied"
	ApprovalUsed     ApprovalStatus = "used"
	ApprovalExpired  ApprovalStatus = "expired"
)

// Approval is a request for a human to approve one call: bound to a run,
// a grant, the call's target and a digest of its exact arguments.
type Approval struct {
	ID      string `json:"id"`
	RunID   string `json:"run_id"`
	GrantID string `json:"grant_id"`
	// Kind, Server and Name name the target as in authz.Target.
	Kind   string `json:"kind"`
	Server string `json:"server"`
	Name   string `json:"name"`
	// ArgsDigest is the hex SHA-256 of the call's exact argument bytes.
	ArgsDigest string `json:"args_digest"`
	// Approver is "sponsor" or the role whose members may approve.
	Approver  string         `json:"approver"`
	Sponsor   Sponsor        `json:"sponsor"`
	Status    ApprovalStatus `json:"status"`
	Requested time.Time      `json:"requested"`
	Expires   time.Time      `json:"expires"`
	DecidedBy *Sponsor       `json:"decided_by,omitempty"`
	Comment   string         `json:"comment,omitempty"`
	Decided   time.Time      `json:"decided,omitzero"`
	Used      time.Time      `json:"used,omitzero"`
}

// StatusAt returns the approval's status at t, counting expiry.
func (a *Approval) StatusAt(t time.Time) ApprovalStatus {
	if (a.Status == ApprovalPending || a.Status == ApprovalApproved) && !t.Before(a.Expires) {
		return ApprovalExpired
	}
	return a.Status
}

// ApprovalFilter selects approvals to list. Zero fields select everything.
type ApprovalFilter struct {
	RunID  string
	Status ApprovalStatus
	Limit  int
}

// ArgsDigest returns the digest approvals bind to: the hex SHA-256 of the
// exact argument bytes, so a call with any other bytes needs its own
// approval.
func ArgsDigest(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}
