package upstream

import (
	"errors"

	"github.com/agentauth/agentauth/agentauth/authz"
)

// Errors a call can fail with. Test with errors.Is; [Reason] maps them to
// decision reasons.
var (
	// ErrUnavailable: the server is down or restarting.
	ErrUnavailable = errors.New("upstream: server unavailable")
	// ErrDefinitionChanged: the tool's definition differs from the accepted
	// one; run `agentauth tools accept SERVER TOOL` after reviewing it.
	ErrDefinitionChanged = errors.New("upstream: tool definition changed since it was accepted")
	// ErrQuarantined: the tool's name is invalid or listed twice.
	ErrQuarantined = errors.New("upstream: tool quarantined")
	// ErrUnknown: no configured server, or no tool, prompt or resource of
	// that name.
	ErrUnknown = errors.New("upstream: unknown server or tool")
)

// Reason returns the decision reason for an error from a call, or "" when
// err is not one of this package's errors (the server itself failed the call).
func Reason(err error) authz.Reason {
	switch {
	case errors.Is(err, ErrUnavailable):
		return authz.ReasonUpstreamUnavailable
	case errors.Is(err, ErrDefinitionChanged):
		return authz.ReasonToolDefinitionChanged
	case errors.Is(err, ErrQuarantined):
		return authz.ReasonToolQuarantined
	case errors.Is(err, ErrUnknown):
		return authz.ReasonToolNotGranted
	}
	return ""
}
