package identity

import (
	"errors"
	"fmt"
	"strings"

	"github.com/oklog/ulid/v2"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// MaxIDLength is the longest SPIFFE ID, in bytes, that Parse accepts. The
// SPIFFE standard requires implementations to handle at least 2048 bytes.
const MaxIDLength = 2048

// Path segments that make up agentauth's SPIFFE IDs.
const (
	segmentGateway = "gateway"
	segmentAgents  = "agents"
	segmentRuns    = "runs"
	segmentTools   = "tools"
)

// Run names the agent and the run id held in a run's SPIFFE ID.
type Run struct {
	Agent string
	RunID string
}

// NewRunID returns a fresh run id: a ULID in its canonical 26-character
// form, sortable by creation time, with 80 random bits.
func NewRunID() string {
	return ulid.Make().String()
}

// GatewayID returns the gateway's own SPIFFE ID in td.
func GatewayID(td spiffeid.TrustDomain) spiffeid.ID {
	return spiffeid.RequireFromSegments(td, "agentauth", segmentGateway)
}

// RunID returns the SPIFFE ID of run runID of agent in td. Both names must
// be valid SPIFFE path segments: letters, digits, '.', '-' and '_', and
// neither "." nor "..".
func RunID(td spiffeid.TrustDomain, agent, runID string) (spiffeid.ID, error) {
	if td.IsZero() {
		return spiffeid.ID{}, errors.New("identity: trust domain is empty")
	}
	id, err := spiffeid.FromSegments(td, segmentAgents, agent, segmentRuns, runID)
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("identity: invalid agent %q or run id %q: %w", agent, runID, err)
	}
	return id, nil
}

// ToolID returns the SPIFFE ID of the tool server named server in td.
func ToolID(td spiffeid.TrustDomain, server string) (spiffeid.ID, error) {
	if td.IsZero() {
		return spiffeid.ID{}, errors.New("identity: trust domain is empty")
	}
	id, err := spiffeid.FromSegments(td, segmentTools, server)
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("identity: invalid tool server name %q: %w", server, err)
	}
	return id, nil
}

// ParseRun returns the agent and run id of a run's SPIFFE ID, or an error
// when id does not have the shape /agents/<agent>/runs/<run-id>.
func ParseRun(id spiffeid.ID) (Run, error) {
	segs := strings.Split(strings.TrimPrefix(id.Path(), "/"), "/")
	if len(segs) != 4 || segs[0] != segmentAgents || segs[2] != segmentRuns {
		return Run{}, fmt.Errorf("identity: %q is not a run ID; want spiffe://<trust-domain>/agents/<agent>/runs/<run-id>", id)
	}
	return Run{Agent: segs[1], RunID: segs[3]}, nil
}

// Parse reads a SPIFFE ID from untrusted input. It rejects input longer
// than MaxIDLength, anything that is not a SPIFFE ID in canonical form, an
// ID outside td and an ID with an empty path (the trust domain itself).
func Parse(s string, td spiffeid.TrustDomain) (spiffeid.ID, error) {
	if len(s) > MaxIDLength {
		return spiffeid.ID{}, fmt.Errorf("identity: SPIFFE ID is %d bytes; the limit is %d", len(s), MaxIDLength)
	}
	id, err := spiffeid.FromString(s)
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("identity: invalid SPIFFE ID %q: %w", s, err)
	}
	if !id.MemberOf(td) {
		return spiffeid.ID{}, fmt.Errorf("identity: SPIFFE ID %q is not in trust domain %q", s, td)
	}
	if id.Path() == "" {
		return spiffeid.ID{}, fmt.Errorf("identity: SPIFFE ID %q has an empty path; it names the trust domain, not a workload", s)
	}
	return id, nil
}

// HasPrefix reports whether id equals prefix or lies below it, matching
// whole path segments only: /agents/a/runs/r1 is below /agents/a but not
// below /agents/a/runs/r (nor is /runs/r10 below /runs/r1). IDs in
// different trust domains never match. A prefix with an empty path
// matches every ID of its trust domain.
func HasPrefix(id, prefix spiffeid.ID) bool {
	if id.IsZero() || prefix.IsZero() || id.TrustDomain() != prefix.TrustDomain() {
		return false
	}
	p, q := id.Path(), prefix.Path()
	return p == q || q == "" || strings.HasPrefix(p, q+"/")
}
