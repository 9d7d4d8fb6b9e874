// Package runs manages agent runs: starting a run for a sponsor, delegating
// to sub-agent runs that can only narrow what their parent holds, revoking a
// run with everything it delegated, offboarding a sponsor, break-glass runs
// and step-up approvals.
//
// A Manager keeps every live run in memory, indexed for the authorizer's
// hot path, and writes every change through a Store so that a restart loses
// nothing and resurrects nothing.
package runs
