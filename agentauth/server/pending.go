package server

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/agentauth/agentauth/agentauth/audit"
	"github.com/agentauth/agentauth/agentauth/authz"
	"github.com/agentauth/agentauth/mcp/gateway"
)

// maxPendingArguments bounds how many approvals' arguments are kept in
// memory for the approvals page; the oldest are dropped first.
const maxPendingArguments = 1024

// pendingArguments keeps the arguments of calls waiting for approval, so
// that the approver sees what they approve. The store keeps only their
// digest, which binds the approval to them. It sits in front of the
// authorizer, because the gateway waits for the approval before it writes
// the decision record.
type pendingArguments struct {
	next   gateway.Authorizer
	redact []string

	mu    sync.Mutex
	args  map[string]json.RawMessage
	order []string
}

func (p *pendingArguments) Authorize(ctx context.Context, r authz.Request) authz.Decision {
	d := p.next.Authorize(ctx, r)
	if d.Effect == authz.ApprovalRequired && d.ApprovalID != "" && len(r.Arguments) > 0 {
		p.keep(d.ApprovalID, r.Arguments)
	}
	return d
}

func (p *pendingArguments) Visible(ctx context.Context, runID string, t authz.Target) bool {
	return p.next.Visible(ctx, runID, t)
}

func (p *pendingArguments) keep(id string, raw json.RawMessage) {
	shown, err := audit.Redact(raw, p.redact)
	if err != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.args == nil {
		p.args = map[string]json.RawMessage{}
	}
	if _, ok := p.args[id]; !ok {
		p.order = append(p.order, id)
	}
	p.args[id] = shown
	for len(p.order) > maxPendingArguments {
		delete(p.args, p.order[0])
		p.order = p.order[1:]
	}
}

// Arguments returns the redacted arguments of a pending approval's call,
// or nil when they are no longer kept.
func (p *pendingArguments) Arguments(id string) json.RawMessage {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.args[id]
}
