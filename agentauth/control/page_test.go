package control

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/agentauth/agentauth/agentauth/control/api"
)

// pageClient returns a client holding a session cookie for sp, and the
// session's CSRF token.
func (h *harness) pageClient(t *testing.T, sp api.Sponsor) (*http.Client, string) {
	t.Helper()
	id, sess, ok := h.srv.sessions.create(sp)
	if !ok {
		t.Fatal("no session")
	}
	c := h.tlsClient(nil)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.Jar = &staticJar{cookie: &http.Cookie{Name: sessionCookie, Value: id}}
	return c, sess.CSRF
}

type staticJar struct{ cookie *http.Cookie }

func (j *staticJar) SetCookies(*url.URL, []*http.Cookie) {}
func (j *staticJar) Cookies(*url.URL) []*http.Cookie     { return []*http.Cookie{j.cookie} }

func postForm(t *testing.T, c *http.Client, u string, form url.Values, origin string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestPageRejectsForgedPosts(t *testing.T) {
	h := newHarness(t)
	steward := api.Sponsor{Issuer: "https://idp.test", Subject: "s1", Groups: []string{"sec-approvers"}}
	h.runs.addApproval(api.Approval{ID: "ap1", RunID: "r1", Tool: "write", Status: "pending"})
	c, csrf := h.pageClient(t, steward)
	u := h.tlsURL + "/approvals/ap1"

	cases := []struct {
		name   string
		form   url.Values
		origin string
	}{
		{"no token", url.Values{"decision": {"approve"}}, ""},
		{"wrong token", url.Values{"decision": {"approve"}, "csrf": {"x" + csrf}}, ""},
		{"cross origin", url.Values{"decision": {"approve"}, "csrf": {csrf}}, "https://evil.test"},
		{"null origin", url.Values{"decision": {"approve"}, "csrf": {csrf}}, "null"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if st := postForm(t, c, u, tc.form, tc.origin); st != http.StatusForbidden {
				t.Errorf("status %d, want 403", st)
			}
		})
	}
	if a := h.runs.approvals["ap1"]; a.Status != "pending" {
		t.Fatalf("a forged post decided the approval: %s", a.Status)
	}
	st := postForm(t, c, u, url.Values{"decision": {"deny"}, "csrf": {csrf}, "comment": {"no"}}, h.tlsURL)
	if st != http.StatusSeeOther || h.runs.approvals["ap1"].Status != "denied" {
		t.Errorf("genuine post: status %d, approval %s", st, h.runs.approvals["ap1"].Status)
	}
}

func TestPageNeedsSignIn(t *testing.T) {
	h := newHarness(t)
	c := h.tlsClient(nil)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(h.tlsURL + "/approvals")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/auth/login" {
		t.Errorf("status %d to %q; want 303 to /auth/login", resp.StatusCode, resp.Header.Get("Location"))
	}
	// A forged or stale session cookie is no sign-in.
	c.Jar = &staticJar{cookie: &http.Cookie{Name: sessionCookie, Value: "forged"}}
	if st := postForm(t, c, h.tlsURL+"/approvals/ap1", url.Values{"decision": {"approve"}}, ""); st != http.StatusUnauthorized {
		t.Errorf("post with a forged session: status %d, want 401", st)
	}
}

func TestCallbackRejectsUnknownState(t *testing.T) {
	h := newHarness(t, withOP)
	c := h.tlsClient(nil)
	resp, err := c.Get(h.tlsURL + "/auth/callback?state=abc&code=xyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status %d, want 400", resp.StatusCode)
	}
}
