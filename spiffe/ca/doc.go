// Package ca is agentauth's embedded SPIFFE certificate authority, used
// when no SPIRE deployment is configured.
//
// On first start it creates a root key and a self-signed root certificate
// for the trust domain in its state directory (the key file with mode
// 0600) and reloads them on every later start; it refuses a root key file
// that group or others can read. Under the root it keeps a signing CA in
// memory, rotated at half of its lifetime by package issuer, and signs
// run SVIDs and its own gateway SVID with it. The trust bundle holds only
// the root, and every SVID carries the signing CA certificate in its
// chain, so SVIDs signed before a rotation or a restart keep verifying.
// JWT signing keys also live only in memory, but their public keys are
// recorded in jwt-authorities.json beside the root until they expire, so
// JWT-SVIDs minted before a restart keep validating too.
//
// CA implements go-spiffe's x509svid.Source (the gateway's own SVID,
// renewed at half of its lifetime while listeners keep running),
// x509bundle.Source and jwtbundle.Source.
package ca
