package issuer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// MintJWTSVID signs an ES256 JWT-SVID for id with exactly one audience.
// The header carries the key id ("kid") found in JWTAuthorities. The token
// lives for ttl, capped at the configured JWT TTL; a ttl of zero or less
// means the configured TTL.
func (i *Issuer) MintJWTSVID(ctx context.Context, id spiffeid.ID, audience string, ttl time.Duration) (string, error) {
	if err := i.checkSubjectID(id); err != nil {
		return "", err
	}
	if audience == "" {
		return "", errors.New("issuer: JWT-SVID audience is empty; name the one service that will accept it")
	}
	if ttl <= 0 || ttl > i.cfg.JWTTTL {
		ttl = i.cfg.JWTTTL
	}

	now := i.cfg.Now()
	g, err := i.current(ctx, now)
	if err != nil {
		return "", err
	}
	claims := jwt.Claims{
		Subject:  id.String(),
		Audience: jwt.Audience{audience},
		IssuedAt: jwt.NewNumericDate(now),
		Expiry:   jwt.NewNumericDate(earliest(now.Add(ttl), g.expires)),
	}
	token, err := jwt.Signed(g.signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("issuer: sign JWT-SVID for %q: %w", id, err)
	}
	return token, nil
}
