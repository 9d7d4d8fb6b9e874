// Package identity builds, parses and checks the SPIFFE IDs that agentauth
// hands out and accepts.
//
// The shapes are fixed:
//
//	spiffe://<trust-domain>/agentauth/gateway            the gateway itself
//	spiffe://<trust-domain>/agents/<agent>/runs/<run-id> one agent run
//	spiffe://<trust-domain>/tools/<server>               a tool server
//
// Run ids are ULIDs made by the gateway with NewRunID, never taken from user
// input. Parse is the entry point for IDs read from untrusted input; PeerID
// reads the ID of an mTLS peer whose chain the TLS stack has verified;
// ValidateJWTSVID checks a JWT-SVID and always requires an audience.
package identity
