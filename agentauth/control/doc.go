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
//
// # OpenID provider
//
// Register agentauth at the provider as a public client (no secret, PKCE
// required) whose client id is oidc.audience and whose redirect URI is
// https://<control listener>/auth/callback, and let it release the groups
// claim named by oidc.groups_claim. oidc.roles maps provider groups to the
// control API's own roles: "admin" (deactivate sponsors, revoke and list
// any run) and "auditor" (read any run). Who may approve a call is decided
// by the policy's roles, not by this mapping. On the control socket the
// gateway's own user and root are admins.
//
// # Wiring
//
// A gateway process builds one Server with New, passing the run manager
// through ManagerServices and the CA as Signer, SVID and bundle source,
// then serves it on both listeners:
//
//	srv, err := control.New(cfg, control.Deps{Runs: svc, Approvals: svc,
//		Signer: ca, SVIDs: ca, Bundles: ca, Logger: log})
//	sock, err := control.ListenSocket(cfg.Listen.ControlSocket, 0o600)
//	go srv.ServeSocket(ctx, sock)
//	go srv.ServeTLS(ctx, tcpListener)
package control
