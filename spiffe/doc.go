// Package spiffe gives the gateway its SPIFFE authority: the CA that signs
// every agent run's SVIDs, the source of the gateway's own SVID, and the
// trust bundles that mTLS and JWT-SVID checks use.
//
// Open picks the authority from the configuration and returns it as an
// Authority, the one interface the gateway uses whichever CA is behind it:
//
//   - The embedded CA (package spiffe/ca), the default. The gateway is its
//     own CA with a root kept in <state_dir>/ca (key file mode 0600) and a
//     signing CA under it that rotates at half of its lifetime.
//   - SPIRE mode (package spiffe/spire), when spire.socket or
//     SPIFFE_ENDPOINT_SOCKET is set. The gateway's own SVID and the bundles
//     come from the SPIRE agent's Workload API. Run SVIDs are signed under a
//     downstream CA that the SPIRE server signs: the gateway's registration
//     entry carries -downstream, and the gateway calls the server's
//     SVID.NewDownstreamX509CA over its TCP API with mTLS. That route was
//     chosen because it keeps every run SVID verifiable against SPIRE's
//     bundle while the gateway signs locally, so starting a run costs no
//     round trip to SPIRE and the gateway never needs SPIRE admin rights.
//     The alternative, SVID.MintX509SVID over the server's admin socket,
//     needs admin rights, a server call per run, and a CSR that already
//     names the SPIFFE ID. The gateway's JWT keys are published with
//     Bundle.PublishJWTAuthority so SPIRE distributes them. docs/spire.md
//     shows the registration and configuration.
//
// Both sign run X.509-SVIDs only from a CSR (package spiffe/csr states what
// is rejected), for the run ID spiffe://<td>/agents/<agent>/runs/<run-id>
// (package spiffe/identity builds, parses and matches IDs), never past the
// run's expiry, and mint ES256 JWT-SVIDs with a key id and one audience.
//
// ServerTLSConfig and ClientTLSConfig build mTLS configurations that fetch
// the SVID and bundle on every handshake, so listeners follow renewals
// without restarting. identity.PeerIDFromRequest reads a verified peer's
// SPIFFE ID, identity.ValidateJWTSVID checks a JWT-SVID (an empty expected
// audience is an error), and RenewRunCSR renews a run's SVID for the
// identity its current SVID proves. On the agent side, package
// spiffe/runsvid keeps a run's SVID renewed from a key that never leaves
// the agent.
package spiffe
