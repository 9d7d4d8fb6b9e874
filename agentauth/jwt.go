package agentauth

import (
	"context"
	"errors"
	"fmt"

	"github.com/agentauth/agentauth/agentauth/control/api"
)

// JWTSVID returns a JWT-SVID of the run for one audience, minted by the
// control API for the run's X.509-SVID. The audience is the gateway's
// SPIFFE ID (an empty audience means it) or a tool server's,
// spiffe://<trust-domain>/tools/<server>. Send the token to the gateway's
// /mcp endpoint as an Authorization bearer token from a process that
// cannot present the SVID over mTLS. It lives for the gateway's JWT TTL
// at most and never past the run's expiry. Keep it secret until then.
func (r *Run) JWTSVID(ctx context.Context, audience string) (string, error) {
	if audience == "" {
		audience = r.gateway.String()
	}
	s, err := r.Control().JWTSVID(ctx, audience)
	if err != nil {
		return "", err
	}
	if s.Token == "" {
		return "", errors.New("agentauth: the control API returned an empty JWT-SVID")
	}
	return s.Token, nil
}

// JWTSVID asks the control API for a JWT-SVID of the calling run for
// audience. The client must authenticate with the run's X.509-SVID, as
// (*Run).Control's does.
func (c *Control) JWTSVID(ctx context.Context, audience string) (api.JWTSVID, error) {
	var s api.JWTSVID
	if err := c.do(ctx, "POST", "/v1/svid/jwt", api.JWTSVIDRequest{Audience: audience}, &s); err != nil {
		return api.JWTSVID{}, fmt.Errorf("agentauth: JWT-SVID for %s: %w", audience, err)
	}
	return s, nil
}
