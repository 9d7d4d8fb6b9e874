package identity

import (
	"errors"
	"fmt"

	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
)

// MaxJWTLength is the longest JWT-SVID, in bytes, that ValidateJWTSVID
// reads. An ES256 JWT-SVID with agentauth's claims is well under 1 KiB.
const MaxJWTLength = 8 << 10

// ValidateJWTSVID parses token and checks its signature against bundles,
// its expiry and its audience. Unlike jwtsvid.ParseAndValidate, which skips
// the audience check when given no audience, it rejects an empty audience.
// It also rejects a token that names more than one audience, because a
// JWT-SVID that agentauth accepts is meant for exactly one recipient.
// Expiry and not-before are checked with go-jose's one-minute leeway for
// clock skew.
func ValidateJWTSVID(token string, bundles jwtbundle.Source, audience string) (*jwtsvid.SVID, error) {
	switch {
	case audience == "":
		return nil, errors.New("identity: expected audience is empty; name the audience this service accepts")
	case bundles == nil:
		return nil, errors.New("identity: no JWT bundle source to check the token against")
	case len(token) > MaxJWTLength:
		return nil, fmt.Errorf("identity: JWT-SVID is %d bytes; the limit is %d", len(token), MaxJWTLength)
	}

	svid, err := jwtsvid.ParseAndValidate(token, bundles, []string{audience})
	if err != nil {
		return nil, fmt.Errorf("identity: invalid JWT-SVID: %w", err)
	}

	if len(svid.Audience) != 1 {
		return nil, fmt.Errorf("identity: JWT-SVID of %q names %d audiences; exactly one is accepted", svid.ID, len(svid.Audience))
	}
	if svid.ID.Path() == "" {
		return nil, fmt.Errorf("identity: JWT-SVID subject %q has an empty path", svid.ID)
	}
	return svid, nil
}
