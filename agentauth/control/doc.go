// Package control serves the agentauth control API: how humans sponsor
// runs, approve or deny tool calls and revoke runs, and how an agent
// exchanges a bootstrap token for its SVID, renews it and delegates to a
// child run.
//
// The API is HTTPS with JSON bodies, versioned under /v1, and described in
// docs/openapi.yaml. It has two listeners:
//
//   - a Unix socket, where the sponsor is the operating-system user of the
//     connecting process, read from the socket's peer credentials;
//   - a TLS listener, where a human sends an OIDC ID token as a bearer
//     token and an agent authenticates with its run X.509-SVID (mTLS).
//
// An agent can only read its own run, delegate from it and renew its
// SVID. It can never approve, revoke or act as a sponsor.
//
// The TLS listener also serves a small approvals page for people, who
// sign in with the configured OpenID provider (authorization code flow
// with PKCE).
package control
