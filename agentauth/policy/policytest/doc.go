// Package policytest runs policy test cases kept in YAML files beside a
// policy (*_test.yaml): each case starts a run chain for a sponsor, makes
// one call through the real authorizer, runs and SQLite store, and
// compares the decision with the expected effect, reason and grant.
package policytest
