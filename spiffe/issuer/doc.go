// Package issuer signs run X.509-SVIDs and mints JWT-SVIDs under a signing
// CA and a JWT key that it rotates before they expire.
//
// The issuer does not decide where its signing CA comes from: a CAMinter
// gets a certificate for each new signing key. The embedded CA (package
// ca) signs it with its own root. SPIRE mode (package spire) requests it
// from the SPIRE server as a downstream CA. Either way a run SVID is
// returned with its whole chain up to, but not including, a root of the
// trust bundle, so it keeps verifying after the issuer has moved on to a
// newer signing CA.
//
// Rotation is lazy: every call checks the clock, and once half of the
// signing CA's lifetime has passed the next call makes a new generation
// (signing CA and JWT key). Earlier JWT keys stay in JWTAuthorities until
// they expire, so JWT-SVIDs already minted keep validating.
package issuer
