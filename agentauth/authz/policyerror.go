package authz

import (
	"fmt"
	"strings"
	"sync"

	"github.com/agentauth/agentauth/agentauth/policy"
)

// maxDetailError bounds how much of an evaluation error a decision's
// Detail and the log keep.
const maxDetailError = 300

// conditionError is a grant condition that failed to evaluate for a call
// of a run.
type conditionError struct {
	run   string
	grant string
	err   error
}

// detail describes the failure for operators.
func (e *conditionError) detail() string {
	msg := strings.TrimPrefix(e.err.Error(), policy.ErrCondition.Error()+": ")
	return fmt.Sprintf("condition of grant %q failed to evaluate: %s", e.grant, clip(msg))
}

// policyError denies the call with a policy_error: the agent gets msg, and
// the decision names the failing grant and carries the evaluation error
// in Detail, which is also logged once per grant and error.
func (a *Authorizer) policyError(d Decision, msg string, e *conditionError) Decision {
	d = d.deny(ReasonPolicyError, msg)
	d.GrantID, d.Detail = e.grant, e.detail()
	if a.warned.first(e.grant + "\x00" + d.Detail) {
		a.runs.Logger().Warn("grant condition failed to evaluate; the call was denied with policy_error",
			"run", e.run, "grant", e.grant, "err", d.Detail)
	}
	return d
}

// storeError denies the call with a policy_error because the approval
// store failed, logging the error once per operation and error.
func (a *Authorizer) storeError(d Decision, runID, msg, op string, err error) Decision {
	d = d.deny(ReasonPolicyError, msg)
	d.Detail = op + ": " + clip(err.Error())
	if a.warned.first(d.Detail) {
		a.runs.Logger().Warn("approval store failed; the call was denied with policy_error",
			"run", runID, "grant", d.GrantID, "err", d.Detail)
	}
	return d
}

func clip(s string) string {
	if len(s) > maxDetailError {
		return strings.ToValidUTF8(s[:maxDetailError], "") + "…"
	}
	return s
}

// maxWarned bounds the keys warnOnce remembers; past it, the set starts
// over, so a key may be logged again.
const maxWarned = 1024

// warnOnce remembers which failures were logged, so that a condition
// failing on every call logs once rather than once per call.
type warnOnce struct {
	mu   sync.Mutex
	seen map[string]struct{}
}

// first reports whether key is new, remembering it.
func (w *warnOnce) first(key string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.seen[key]; ok {
		return false
	}
	if w.seen == nil || len(w.seen) >= maxWarned {
		w.seen = map[string]struct{}{}
	}
	w.seen[key] = struct{}{}
	return true
}
