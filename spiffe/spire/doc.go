// Package spire runs agentauth's SPIFFE authority under a SPIRE
// deployment.
//
// The gateway takes its own X.509-SVID and the trust bundles from the SPIRE
// agent's Workload API, following every rotation SPIRE pushes. To sign run
// SVIDs it needs a CA that chains to SPIRE's roots. So the gateway's
// registration entry is created with `-downstream`, and the gateway calls
// the SPIRE server's SVID.NewDownstreamX509CA over the server's TCP API. It
// authenticates by mutual TLS with its Workload API SVID, the same route a
// nested SPIRE server takes. The server returns a CA certificate for a key
// that the gateway generated and never sends. The gateway signs run SVIDs
// under it locally, with no server round trip per run, and requests a new
// one at half of its lifetime. Each new JWT signing key is published with
// Bundle.PublishJWTAuthority (also open to downstream entries), so SPIRE
// distributes it to every workload with the JWT bundle.
package spire
