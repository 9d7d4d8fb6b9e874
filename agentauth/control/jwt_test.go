package control

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"

	"github.com/agentauth/agentauth/agentauth/control/api"
)

func TestMintJWTSVID(t *testing.T) {
	h := newHarness(t)
	run, agent := h.startAgent(t, "fs-read")
	gw := "spiffe://" + h.td.Name() + "/agentauth/gateway"
	for _, aud := range []string{gw, "spiffe://" + h.td.Name() + "/tools/fs-2"} {
		var s api.JWTSVID
		st, e := call(t, agent, "POST", h.tlsURL+"/v1/svid/jwt", "", api.JWTSVIDRequest{Audience: aud}, &s)
		if st != http.StatusOK {
			t.Fatalf("mint for %s: status %d %+v", aud, st, e)
		}
		svid, err := jwtsvid.ParseAndValidate(s.Token, h.ca, []string{aud})
		if err != nil {
			t.Fatalf("minted token does not validate: %v", err)
		}
		if svid.ID.String() != run.SPIFFEID || s.SPIFFEID != run.SPIFFEID || s.Audience != aud {
			t.Errorf("token for %s, reply %+v; want the run %s", svid.ID, s, run.SPIFFEID)
		}
		if svid.Expiry.After(run.ExpiresAt.Add(time.Second)) || svid.Expiry.After(time.Now().Add(h.cfg.CA.JWTTTL+time.Minute)) {
			t.Errorf("token expires %v, past the run (%v) or the JWT TTL", svid.Expiry, run.ExpiresAt)
		}
	}
	for _, aud := range []string{"", "gateway", "https://example.org", "spiffe://other.example/agentauth/gateway",
		"spiffe://" + h.td.Name() + "/agents/researcher/runs/" + run.ID, "spiffe://" + h.td.Name() + "/tools/a_b",
		"spiffe://" + h.td.Name() + "/tools/", "spiffe://" + h.td.Name() + "/tools/a/b",
		"spiffe://" + h.td.Name() + "/tools/" + strings.Repeat("a", 3000)} {
		st, e := call(t, agent, "POST", h.tlsURL+"/v1/svid/jwt", "", api.JWTSVIDRequest{Audience: aud}, nil)
		if st != http.StatusBadRequest || e.Code != api.CodeInvalidRequest {
			t.Errorf("audience %q: status %d %+v; want 400 invalid_request", aud, st, e)
		}
	}
	st, e := call(t, h.socketClient(), "POST", "http://local/v1/svid/jwt", "", api.JWTSVIDRequest{Audience: gw}, nil)
	if st != http.StatusForbidden {
		t.Errorf("sponsor mints: status %d %+v; want 403", st, e)
	}
	call(t, h.socketClient(), "POST", "http://local/v1/runs/"+run.ID+"/revoke", "", api.RevokeRequest{}, nil)
	st, e = call(t, agent, "POST", h.tlsURL+"/v1/svid/jwt", "", api.JWTSVIDRequest{Audience: gw}, nil)
	if st != http.StatusForbidden {
		t.Errorf("revoked run mints: status %d %+v; want 403", st, e)
	}
}

func TestMintJWTSVIDDisabled(t *testing.T) {
	h := newHarness(t, func(h *harness) { h.noJWTs = true })
	_, agent := h.startAgent(t, "fs-read")
	st, e := call(t, agent, "POST", h.tlsURL+"/v1/svid/jwt", "",
		api.JWTSVIDRequest{Audience: "spiffe://" + h.td.Name() + "/agentauth/gateway"}, nil)
	if st != http.StatusServiceUnavailable || e.Code != api.CodeUnavailable {
		t.Errorf("status %d %+v; want 503 unavailable", st, e)
	}
}

func FuzzCheckAudience(f *testing.F) {
	h := newHarness(f)
	for _, s := range []string{"spiffe://agentauth.local/agentauth/gateway", "spiffe://agentauth.local/tools/fs",
		"spiffe://agentauth.local/tools/../agentauth/gateway", "spiffe://AGENTAUTH.local/tools/x", strings.Repeat("a", 3000)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, aud string) {
		if h.srv.checkAudience(aud) != nil {
			return
		}
		id, err := spiffeid.FromString(aud)
		if err != nil || id.TrustDomain() != h.td || id.String() != aud {
			t.Fatalf("accepted %q, which is not a SPIFFE ID of %s", aud, h.td)
		}
		if id != h.srv.gatewayID() && !strings.HasPrefix(id.Path(), "/tools/") {
			t.Fatalf("accepted %q, neither the gateway nor a tool server", aud)
		}
		if len(aud) > maxAudienceBytes {
			t.Fatalf("accepted a %d-byte audience", len(aud))
		}
	})
}
