// Package agentauth is the Go SDK of agentauth for agent frameworks.
//
// An agent process joins the run it was started for (Join reads the
// AGENTAUTH_* environment that `agentauth run start` sets), or a local
// program starts a run as a sponsor over the control socket (DialSocket,
// then Control.StartRun). Joining generates the run's ECDSA P-256 key in
// memory (it is never written to disk), exchanges the single-use bootstrap
// token and a CSR for the run's X.509-SVID, and renews the SVID before it
// expires until the SVID lasts as long as the run. Run.Done is closed when
// renewal ends (the run expired or was revoked, or Close was called), and
// Run.Err returns the reason. A Run is an x509svid.Source and an x509bundle.Source, gives an
// mTLS HTTP client for the gateway, and connects an mcp-go client to it.
//
// A run delegates to a child run with Run.Delegate and hands the child its
// environment. A tool server that calls other tools through the gateway
// reads the transaction token of the incoming call (TxnTokenFromRequest)
// and passes it on (WithTxnToken).
//
// The environment of an agent process:
//
//	AGENTAUTH_GATEWAY          MCP endpoint of the gateway (https URL)
//	AGENTAUTH_CONTROL          control API of the gateway (https URL)
//	AGENTAUTH_BOOTSTRAP_TOKEN  single-use token to exchange for the SVID
//	AGENTAUTH_RUN_ID           the run's id
//	AGENTAUTH_SPIFFE_ID        the run's SPIFFE ID
//	AGENTAUTH_TRUST_BUNDLE     path of the PEM trust bundle of the gateway
//	AGENTAUTH_RUN_EXPIRES      the run's expiry, RFC 3339 (optional)
package agentauth
