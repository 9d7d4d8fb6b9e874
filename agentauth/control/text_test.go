package control

import (
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/agentauth/agentauth/agentauth/control/api"
)

func TestCheckText(t *testing.T) {
	for _, ok := range []string{"", "summarize notes", "café — naïve 東京", "a/b: c (d) 'e' \"f\""} {
		if aerr := checkText("purpose", ok, 64); aerr != nil {
			t.Errorf("checkText(%q) = %v, want nil", ok, aerr)
		}
	}
	for _, bad := range []string{"a\nb", "a\rb", "tab\there", "\x1b[31mred", "nul\x00", "del\x7f",
		"c1\u0085", "csi\u009b31m", "bidi\u202eevil", "iso\u2066x", "zw\u200bj", "\xff\xfe",
		strings.Repeat("a", 65)} {
		aerr := checkText("purpose", bad, 64)
		if aerr == nil || aerr.Code != api.CodeInvalidRequest || !strings.Contains(aerr.Message, "purpose") {
			t.Errorf("checkText(%q) = %v, want an invalid_request naming the field", bad, aerr)
		}
	}
}

func FuzzCheckText(f *testing.F) {
	for _, s := range []string{"ok", "\x1b]0;title\x07", "a\u202eb", "\xc0\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if checkText("reason", s, 1024) != nil {
			return
		}
		if !utf8.ValidString(s) {
			t.Fatalf("accepted invalid UTF-8 %q", s)
		}
		for _, r := range s {
			if r < 0x20 || (r >= 0x7f && r < 0xa0) || r == 0x202e {
				t.Fatalf("accepted %q with %U", s, r)
			}
		}
	})
}

// TestFreeTextRejectsControlCharacters sends an ANSI escape in every free-text
// field of the API; each is refused before it reaches a service.
func TestFreeTextRejectsControlCharacters(t *testing.T) {
	h := newHarness(t)
	sock := h.socketClient()
	const evil = "ok\x1b[2K\rrun 01FAKE  approved"
	var start api.StartRunResponse
	if st, e := call(t, sock, "POST", "http://local/v1/runs", "",
		api.StartRunRequest{Agent: "researcher", Grants: []string{"read"}, Purpose: "fine"}, &start); st != http.StatusCreated {
		t.Fatalf("start: %d %+v", st, e)
	}
	h.runs.addApproval(api.Approval{ID: "01APPROVAL", Status: "pending", RunID: start.Run.ID})
	cases := []struct {
		name, path string
		body       any
	}{
		{"purpose", "/v1/runs", api.StartRunRequest{Agent: "researcher", Grants: []string{"read"}, Purpose: evil}},
		{"revoke reason", "/v1/runs/" + start.Run.ID + "/revoke", api.RevokeRequest{Reason: evil}},
		{"approval comment", "/v1/approvals/01APPROVAL/approve", api.DecisionRequest{Comment: evil}},
		{"deny comment", "/v1/approvals/01APPROVAL/deny", api.DecisionRequest{Comment: "no\u009b31m"}},
		{"break-glass reason", "/v1/breakglass", api.BreakGlassRequest{Grant: "read", Agent: "researcher", Reason: evil}},
		{"deactivate reason", "/v1/sponsors/deactivate", api.DeactivateSponsorRequest{Issuer: "local", Subject: "x", Reason: evil}},
	}
	for _, c := range cases {
		st, e := call(t, sock, "POST", "http://local"+c.path, "", c.body, nil)
		if st != http.StatusBadRequest || e.Code != api.CodeInvalidRequest || !strings.Contains(e.Message, "control") {
			t.Errorf("%s with a control character: status %d %+v; want 400 invalid_request", c.name, st, e)
		}
	}
	var r api.Run
	call(t, sock, "GET", "http://local/v1/runs/"+start.Run.ID, "", nil, &r)
	if r.Status != "active" {
		t.Errorf("run is %s after a refused revoke; want active", r.Status)
	}
}
