// Package policy loads agentauth policy as code: the agents that may run,
// the grants they may hold, which sponsors may hand which grants to which
// agents (entitlements), break-glass grants, and the grants of tool servers
// that call other tools on behalf of a run.
//
// A policy is YAML, one file or a folder whose *.yaml files (other than
// *_test.yaml, which hold policy tests) load as one document. Grant
// conditions are CEL expressions compiled once at load; a condition that
// fails to compile, or whose estimated cost is over the limit, rejects the
// whole policy with the file, line and column of the problem.
//
// # Sponsor matching
//
// A sponsor selector (in entitlements, roles and break-glass grants) has
// the fields issuer, subjects, emails, groups and claims. Every field that
// is set must match, and a list field matches when any of its values equals
// the sponsor's value exactly (no case folding). An empty selector matches
// nobody. Local OS users of the embedded default have issuer "local", their
// username as subject and their OS groups as groups.
//
// # Names
//
// Tool, prompt and server names and resource URIs are compared byte for
// byte: no case folding and no Unicode normalization.
package policy
