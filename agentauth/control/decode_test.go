package control

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agentauth/agentauth/agentauth/control/api"
)

func TestRequestDecodingIsStrict(t *testing.T) {
	h := newHarness(t)
	cases := []struct {
		name, ctype, body string
		status            int
		code              string
	}{
		{"unknown field", "application/json", `{"agent":"a","grants":["g"],"admin":true}`, 400, api.CodeInvalidRequest},
		{"trailing data", "application/json", `{"agent":"a","grants":["g"]} {}`, 400, api.CodeInvalidRequest},
		{"not JSON", "application/json", `agent=a`, 400, api.CodeInvalidRequest},
		{"array", "application/json", `[1,2]`, 400, api.CodeInvalidRequest},
		{"wrong type", "application/json", `{"agent":7,"grants":["g"]}`, 400, api.CodeInvalidRequest},
		{"empty body", "application/json", ``, 400, api.CodeInvalidRequest},
		{"form type", "application/x-www-form-urlencoded", `agent=a`, 415, api.CodeUnsupportedMedia},
		{"oversized", "application/json", `{"agent":"` + strings.Repeat("a", api.MaxBodyBytes) + `"}`, 413, api.CodeRequestTooLarge},
		{"duplicate name", "application/json", `{"agent":"a","agent":"b","grants":["g"]}`, 400, api.CodeInvalidRequest},
		{"name in other case", "application/json", `{"Agent":"a","grants":["g"]}`, 400, api.CodeInvalidRequest},
		{"invalid UTF-8", "application/json", "{\"agent\":\"\xff\",\"grants\":[\"g\"]}", 400, api.CodeInvalidRequest},
		{"no agent", "application/json", `{"grants":["g"]}`, 400, api.CodeInvalidRequest},
		{"no grants", "application/json", `{"agent":"a"}`, 400, api.CodeInvalidRequest},
		{"bad ttl", "application/json", `{"agent":"a","grants":["g"],"ttl":"forever"}`, 400, api.CodeInvalidRequest},
		{"ttl too long", "application/json", `{"agent":"a","grants":["g"],"ttl":"48h"}`, 400, api.CodeInvalidRequest},
		{"negative ttl", "application/json", `{"agent":"a","grants":["g"],"ttl":"-5m"}`, 400, api.CodeInvalidRequest},
		{"entitlement", "application/json", `{"agent":"forbidden","grants":["g"]}`, 403, api.CodeEntitlementDenied},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", "http://local/v1/runs", bytes.NewBufferString(c.body))
			req.Header.Set("Content-Type", c.ctype)
			resp, err := h.socketClient().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e api.Error
			decodeJSON(resp.Body, &e)
			if resp.StatusCode != c.status || e.Code != c.code {
				t.Errorf("status %d code %q (%s); want %d %s", resp.StatusCode, e.Code, e.Message, c.status, c.code)
			}
			if e.Message == "" {
				t.Error("error has no message")
			}
		})
	}
}

func TestUnknownEndpointIsJSON(t *testing.T) {
	h := newHarness(t)
	st, e := call(t, h.socketClient(), "GET", "http://local/v1/nothing", "", nil, nil)
	if st != http.StatusNotFound || e.Code != api.CodeNotFound {
		t.Errorf("status %d code %q", st, e.Code)
	}
}

func TestWrongMethodIsJSON(t *testing.T) {
	h := newHarness(t)
	st, e := call(t, h.socketClient(), "DELETE", "http://local/v1/runs", "", nil, nil)
	if st != http.StatusMethodNotAllowed || e.Code != api.CodeMethodNotAllowed {
		t.Errorf("status %d code %q; want 405 %s", st, e.Code, api.CodeMethodNotAllowed)
	}
	if !strings.Contains(e.Message, "GET and POST") {
		t.Errorf("message %q does not name the allowed methods", e.Message)
	}
}

func TestTLSWithoutCredentials(t *testing.T) {
	h := newHarness(t)
	st, e := call(t, h.tlsClient(nil), "GET", h.tlsURL+"/v1/runs", "", nil, nil)
	if st != http.StatusUnauthorized || e.Code != api.CodeUnauthenticated {
		t.Errorf("status %d code %q; want 401", st, e.Code)
	}
}

func TestParseCSR(t *testing.T) {
	_, good := newCSR(t)
	if _, err := ParseCSR(good); err != nil {
		t.Errorf("valid CSR rejected: %v", err)
	}
	for name, in := range map[string]string{
		"empty":       "",
		"garbage":     "%%%",
		"certificate": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
		"trailing":    good + "junk",
		"oversized":   strings.Repeat("A", maxCSRBytes+1),
		"bad base64":  "not base64!",
	} {
		if _, err := ParseCSR(in); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParseCSR(f *testing.F) {
	_, good := newCSR(f)
	f.Add(good)
	f.Add("-----BEGIN CERTIFICATE REQUEST-----\n\n-----END CERTIFICATE REQUEST-----")
	f.Add("MIIB")
	f.Fuzz(func(t *testing.T, s string) {
		der, err := ParseCSR(s)
		if err == nil && len(der) == 0 {
			t.Error("accepted with no DER")
		}
	})
}

func FuzzDecodeStartRun(f *testing.F) {
	f.Add(`{"agent":"a","grants":["g"],"ttl":"5m"}`)
	f.Add(`{"agent":"a","grants":["g"]}{}`)
	f.Add(`{"agent":"a","Agent":"b"}`)
	f.Fuzz(func(t *testing.T, s string) {
		var req api.StartRunRequest
		if decodeJSON(strings.NewReader(s), &req) != nil {
			return
		}
		// Whatever decodes must still pass validation before use.
		if _, _, aerr := runRequest(req.Agent, req.Grants, req.Purpose, req.TTL, req.CSR); aerr == nil {
			if req.Agent == "" || len(req.Grants) == 0 {
				t.Errorf("invalid request %q passed validation", s)
			}
		}
	})
}

func FuzzBootstrapRedeem(f *testing.F) {
	f.Add("aabt_x")
	f.Add("")
	b := newBootstrapStore(0, nil)
	f.Fuzz(func(t *testing.T, tok string) {
		if _, ok := b.Redeem(tok); ok {
			t.Errorf("token %q redeemed from an empty store", tok)
		}
	})
}

func TestParseRunID(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("agentauth.local")
	for _, c := range []struct {
		id   string
		ok   bool
		run  string
		kind string
	}{
		{"spiffe://agentauth.local/agents/researcher/runs/01ABC", true, "01ABC", "researcher"},
		{"spiffe://other.test/agents/researcher/runs/01ABC", false, "", ""},
		{"spiffe://agentauth.local/agentauth/gateway", false, "", ""},
		{"spiffe://agentauth.local/tools/fs", false, "", ""},
		{"spiffe://agentauth.local/agents/researcher/runs/01ABC/extra", false, "", ""},
		{"spiffe://agentauth.local/agents/researcher/jobs/01ABC", false, "", ""},
	} {
		a, err := parseRunID(td, spiffeid.RequireFromString(c.id))
		if (err == nil) != c.ok || a.RunID != c.run || a.Agent != c.kind {
			t.Errorf("parseRunID(%s) = %+v, %v", c.id, a, err)
		}
	}
}

func FuzzParseRunID(f *testing.F) {
	td := spiffeid.RequireTrustDomainFromString("agentauth.local")
	f.Add("/agents/a/runs/b")
	f.Add("/agents//runs/")
	f.Fuzz(func(t *testing.T, path string) {
		id, err := spiffeid.FromPath(td, path)
		if err != nil {
			return
		}
		a, err := parseRunID(td, id)
		if err == nil && (a.RunID == "" || a.Agent == "" || strings.Contains(a.RunID, "/")) {
			t.Errorf("path %q parsed to %+v", path, a)
		}
	})
}

func FuzzBearerToken(f *testing.F) {
	f.Add("Bearer abc")
	f.Add("bearer   ")
	f.Add("Basic xyz")
	f.Fuzz(func(t *testing.T, h string) {
		r, _ := http.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", h)
		if tok, ok := bearerToken(r); ok && (tok == "" || strings.ContainsAny(tok[:1], " \t")) {
			t.Errorf("header %q gave token %q", h, tok)
		}
	})
}
