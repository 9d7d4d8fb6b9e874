package gateway

import (
	"github.com/agentauth/agentauth/agentauth/authz"
	"github.com/agentauth/agentauth/agentauth/runs"
	"github.com/agentauth/agentauth/mcp/upstream"
)

// The real parts satisfy the interfaces the gateway consumes.
var (
	_ Authorizer = (*authz.Authorizer)(nil)
	_ Approvals  = (*runs.Manager)(nil)
	_ Upstream   = (*upstream.Set)(nil)
)
