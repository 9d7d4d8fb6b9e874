package control

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentauth/agentauth/agentauth/config"
	"github.com/agentauth/agentauth/agentauth/control/api"
	"github.com/agentauth/agentauth/internal/oidcop"
)

const redirect = "https://client.test/cb"

func addPeople(p *oidcop.Provider) {
	p.AddUser("alice", oidcop.User{Subject: "u-alice", Email: "alice@example.org", Groups: []string{"engineering"}})
	p.AddUser("bob", oidcop.User{Subject: "u-bob", Email: "bob@example.org", Groups: []string{"sec-approvers"}})
	p.AddUser("carol", oidcop.User{Subject: "u-carol", Groups: []string{"platform-admins", "auditors"}})
}

func whoami(t *testing.T, h *harness, token string) (int, api.Identity, api.Error) {
	t.Helper()
	var id api.Identity
	st, e := call(t, h.tlsClient(nil), "GET", h.tlsURL+"/v1/whoami", token, nil, &id)
	return st, id, e
}

func TestOIDCValidToken(t *testing.T) {
	h := newHarness(t, withOP)
	addPeople(h.op)
	tok := h.op.Token(t, "alice", testClientID, redirect)
	st, id, e := whoami(t, h, tok)
	if st != http.StatusOK {
		t.Fatalf("status %d %+v", st, e)
	}
	want := api.Sponsor{Issuer: h.op.Issuer, Subject: "u-alice", Email: "alice@example.org",
		Groups: []string{"engineering"}}
	if id.Kind != "sponsor" || id.Sponsor == nil || id.Sponsor.Issuer != want.Issuer ||
		id.Sponsor.Subject != want.Subject || id.Sponsor.Email != want.Email ||
		!slices.Equal(id.Sponsor.Groups, want.Groups) {
		t.Errorf("whoami = %+v; want sponsor %+v", id.Sponsor, want)
	}
	if len(id.Sponsor.Roles) != 0 {
		t.Errorf("alice has roles %v; want none", id.Sponsor.Roles)
	}

	var start api.StartRunResponse
	st, e = call(t, h.tlsClient(nil), "POST", h.tlsURL+"/v1/runs", tok,
		api.StartRunRequest{Agent: "researcher", Grants: []string{"fs-read"}}, &start)
	if st != http.StatusCreated || start.Run.Sponsor.Subject != "u-alice" {
		t.Errorf("start run as alice: status %d %+v, sponsor %+v", st, e, start.Run.Sponsor)
	}
}

func TestOIDCGroupsMapToRoles(t *testing.T) {
	h := newHarness(t, withOP)
	addPeople(h.op)
	for _, c := range []struct {
		user  string
		roles []string
	}{
		{"alice", nil},
		{"bob", nil},
		{"carol", []string{RoleAdmin, RoleAuditor}},
	} {
		t.Run(c.user, func(t *testing.T) {
			_, id, e := whoami(t, h, h.op.Token(t, c.user, testClientID, redirect))
			if id.Sponsor == nil {
				t.Fatalf("no sponsor: %+v", e)
			}
			if !slices.Equal(id.Sponsor.Roles, c.roles) {
				t.Errorf("roles = %v, want %v", id.Sponsor.Roles, c.roles)
			}
		})
	}
}

func TestOIDCRejectsBadTokens(t *testing.T) {
	h := newHarness(t, withOP)
	addPeople(h.op)
	h.op.AddClient(&oidcop.Client{ID: "other-app", Redirects: []string{redirect}})
	good := h.op.Token(t, "alice", testClientID, redirect)

	other := oidcop.Start(t)
	other.AddClient(&oidcop.Client{ID: testClientID, Redirects: []string{redirect}})
	other.AddUser("alice", oidcop.User{Subject: "u-alice"})

	cases := map[string]string{
		"wrong issuer":   other.Token(t, "alice", testClientID, redirect),
		"wrong audience": h.op.Token(t, "alice", "other-app", redirect),
		"alg none":       algNone(t, good),
		"bad signature":  good[:len(good)-4] + "AAAA",
		"not a JWT":      "not-a-token",
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			st, _, e := whoami(t, h, tok)
			if st != http.StatusUnauthorized || e.Code != api.CodeUnauthenticated {
				t.Errorf("status %d code %q; want 401 %s", st, e.Code, api.CodeUnauthenticated)
			}
		})
	}
}

// algNone rewrites a token's header to alg none and drops its signature.
func algNone(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	hdr, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT"})
	return base64.RawURLEncoding.EncodeToString(hdr) + "." + parts[1] + "."
}

func TestOIDCExpiredToken(t *testing.T) {
	h := newHarness(t, withOP)
	addPeople(h.op)
	tok := h.op.Token(t, "alice", testClientID, redirect)
	if st, _, e := whoami(t, h, tok); st != http.StatusOK {
		t.Fatalf("fresh token: status %d %+v", st, e)
	}
	// The provider's ID tokens live five minutes.
	h.nowFunc = func() time.Time { return time.Now().Add(6 * time.Minute) }
	st, _, e := whoami(t, h, tok)
	if st != http.StatusUnauthorized || e.Code != api.CodeUnauthenticated {
		t.Errorf("expired token: status %d code %q; want 401", st, e.Code)
	}
}

func TestOIDCFollowsKeyRotation(t *testing.T) {
	h := newHarness(t, withOP)
	addPeople(h.op)
	if st, _, e := whoami(t, h, h.op.Token(t, "alice", testClientID, redirect)); st != http.StatusOK {
		t.Fatalf("before rotation: status %d %+v", st, e)
	}
	kid := h.op.RotateKey(false)
	tok := h.op.Token(t, "bob", testClientID, redirect)
	if !strings.Contains(headerOf(t, tok), kid) {
		t.Fatalf("new token is not signed with the new key %s", kid)
	}
	st, id, e := whoami(t, h, tok)
	if st != http.StatusOK || id.Sponsor.Subject != "u-bob" {
		t.Errorf("after rotation: status %d %+v", st, e)
	}
}

func headerOf(t *testing.T, tok string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestOIDCNotConfigured(t *testing.T) {
	h := newHarness(t)
	st, _, e := whoami(t, h, "eyJhbGciOiJub25lIn0.e30.")
	if st != http.StatusUnauthorized || !strings.Contains(e.Message, "oidc.issuer") {
		t.Errorf("status %d %+v; want 401 naming oidc.issuer", st, e)
	}
}

func TestOIDCProviderDown(t *testing.T) {
	h := newHarness(t, func(h *harness) {
		h.cfg.OIDC = config.OIDC{Issuer: "https://127.0.0.1:1", Audience: testClientID}
	})
	st, _, e := whoami(t, h, "eyJhbGciOiJFUzI1NiJ9.e30.AAAA")
	if st != http.StatusServiceUnavailable || e.Code != api.CodeUnavailable {
		t.Errorf("status %d code %q; want 503 %s", st, e.Code, api.CodeUnavailable)
	}
}

func TestApprovalDecisions(t *testing.T) {
	h := newHarness(t, withOP)
	addPeople(h.op)
	h.runs.addApproval(api.Approval{ID: "ap1", RunID: "r1", Tool: "write", Status: "pending",
		Sponsor: api.Sponsor{Issuer: h.op.Issuer, Subject: "u-dave"}})
	alice := h.op.Token(t, "alice", testClientID, redirect)
	bob := h.op.Token(t, "bob", testClientID, redirect)

	st, e := call(t, h.tlsClient(nil), "POST", h.tlsURL+"/v1/approvals/ap1/approve", alice,
		api.DecisionRequest{Comment: "ok"}, nil)
	if st != http.StatusForbidden {
		t.Errorf("alice approves: status %d %+v; want 403", st, e)
	}
	var a api.Approval
	st, e = call(t, h.tlsClient(nil), "POST", h.tlsURL+"/v1/approvals/ap1/approve", bob,
		api.DecisionRequest{Comment: "looks right"}, &a)
	if st != http.StatusOK || a.Status != "approved" || a.DecidedBy.Subject != "u-bob" || a.Comment != "looks right" {
		t.Errorf("bob approves: status %d %+v, approval %+v", st, e, a)
	}
	st, e = call(t, h.tlsClient(nil), "POST", h.tlsURL+"/v1/approvals/ap1/deny", bob, api.DecisionRequest{}, nil)
	if st != http.StatusConflict {
		t.Errorf("deciding twice: status %d %+v; want 409", st, e)
	}
	st, e = call(t, h.tlsClient(nil), "POST", h.tlsURL+"/v1/sponsors/deactivate", bob,
		api.DeactivateSponsorRequest{Issuer: h.op.Issuer, Subject: "u-alice"}, nil)
	if st != http.StatusForbidden {
		t.Errorf("approver deactivates: status %d %+v; want 403", st, e)
	}
	carol := h.op.Token(t, "carol", testClientID, redirect)
	st, e = call(t, h.tlsClient(nil), "POST", h.tlsURL+"/v1/sponsors/deactivate", carol,
		api.DeactivateSponsorRequest{Issuer: h.op.Issuer, Subject: "u-alice"}, nil)
	if st != http.StatusNoContent || len(h.runs.deactivated) != 1 {
		t.Errorf("admin deactivates: status %d %+v", st, e)
	}
	st, e = call(t, h.tlsClient(nil), "POST", h.tlsURL+"/v1/sponsors/reactivate", bob,
		api.SponsorRequest{Issuer: h.op.Issuer, Subject: "u-alice"}, nil)
	if st != http.StatusForbidden || len(h.runs.deactivated) != 1 {
		t.Errorf("approver reactivates: status %d %+v; want 403", st, e)
	}
	st, e = call(t, h.tlsClient(nil), "POST", h.tlsURL+"/v1/sponsors/reactivate", carol,
		api.SponsorRequest{Issuer: h.op.Issuer}, nil)
	if st != http.StatusBadRequest {
		t.Errorf("reactivate without a subject: status %d %+v; want 400", st, e)
	}
	st, e = call(t, h.tlsClient(nil), "POST", h.tlsURL+"/v1/sponsors/reactivate", carol,
		api.SponsorRequest{Issuer: h.op.Issuer, Subject: "u-alice"}, nil)
	if st != http.StatusNoContent || len(h.runs.deactivated) != 0 {
		t.Errorf("admin reactivates: status %d %+v", st, e)
	}
}

func TestRevokeOnlyBySponsorOrAdmin(t *testing.T) {
	h := newHarness(t, withOP)
	addPeople(h.op)
	alice := h.op.Token(t, "alice", testClientID, redirect)
	bob := h.op.Token(t, "bob", testClientID, redirect)
	var start api.StartRunResponse
	call(t, h.tlsClient(nil), "POST", h.tlsURL+"/v1/runs", alice,
		api.StartRunRequest{Agent: "researcher", Grants: []string{"fs-read"}}, &start)
	st, e := call(t, h.tlsClient(nil), "POST", h.tlsURL+"/v1/runs/"+start.Run.ID+"/revoke", bob, api.RevokeRequest{}, nil)
	if st != http.StatusForbidden {
		t.Errorf("bob revokes alice's run: status %d %+v; want 403", st, e)
	}
	var run api.Run
	st, e = call(t, h.tlsClient(nil), "POST", h.tlsURL+"/v1/runs/"+start.Run.ID+"/revoke", alice,
		api.RevokeRequest{Reason: "done"}, &run)
	if st != http.StatusOK || run.Status != "revoked" {
		t.Errorf("alice revokes: status %d %+v, run %s", st, e, run.Status)
	}
}

// TestOIDCShortLivedTokenExpires lets a two-second ID token run out on
// the real clock.
func TestOIDCShortLivedTokenExpires(t *testing.T) {
	h := newHarness(t, withOP)
	addPeople(h.op)
	h.op.AddClient(&oidcop.Client{ID: testClientID, Redirects: []string{redirect}, Lifetime: 2 * time.Second})
	tok := h.op.Token(t, "alice", testClientID, redirect)
	if st, _, e := whoami(t, h, tok); st != http.StatusOK {
		t.Fatalf("fresh two-second token: status %d %+v", st, e)
	}
	time.Sleep(3100 * time.Millisecond)
	st, _, e := whoami(t, h, tok)
	if st != http.StatusUnauthorized || e.Code != api.CodeUnauthenticated {
		t.Errorf("expired token: status %d code %q; want 401", st, e.Code)
	}
}
