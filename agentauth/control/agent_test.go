package control

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/agentauth/agentauth/agentauth/control/api"
)

func TestBootstrapExchange(t *testing.T) {
	h := newHarness(t)
	var start api.StartRunResponse
	st, e := call(t, h.socketClient(), "POST", "http://local/v1/runs", "",
		api.StartRunRequest{Agent: "researcher", Grants: []string{"fs-read"}, TTL: "30m"}, &start)
	if st != http.StatusCreated {
		t.Fatalf("start: status %d %+v", st, e)
	}
	if !strings.HasPrefix(start.BootstrapToken, bootstrapPrefix) || start.SVID != nil {
		t.Fatalf("start returned token %q and SVID %v; want a token only", start.BootstrapToken, start.SVID)
	}
	key, csrPEM := newCSR(t)
	var svid api.SVID
	st, e = call(t, h.tlsClient(nil), "POST", h.tlsURL+"/v1/svid/exchange", "",
		api.ExchangeRequest{BootstrapToken: start.BootstrapToken, CSR: csrPEM}, &svid)
	if st != http.StatusOK {
		t.Fatalf("exchange: status %d %+v", st, e)
	}
	if svid.SPIFFEID != start.Run.SPIFFEID {
		t.Errorf("SVID names %s, want %s", svid.SPIFFEID, start.Run.SPIFFEID)
	}
	leaf := firstCert(t, svid.CertChainPEM)
	if !key.PublicKey.Equal(leaf.PublicKey) {
		t.Error("SVID does not carry the CSR's public key")
	}
	if leaf.NotAfter.After(start.Run.ExpiresAt) {
		t.Errorf("SVID expires %v, after the run's %v", leaf.NotAfter, start.Run.ExpiresAt)
	}
	if svid.BundlePEM == "" {
		t.Error("no trust bundle returned")
	}

	_, csr2 := newCSR(t)
	st, e = call(t, h.tlsClient(nil), "POST", h.tlsURL+"/v1/svid/exchange", "",
		api.ExchangeRequest{BootstrapToken: start.BootstrapToken, CSR: csr2}, nil)
	if st != http.StatusUnauthorized || e.Code != api.CodeBootstrapInvalid {
		t.Errorf("second use of a bootstrap token: status %d code %q; want 401 %s", st, e.Code, api.CodeBootstrapInvalid)
	}
}

func firstCert(t *testing.T, chain string) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode([]byte(chain))
	if b == nil {
		t.Fatal("no PEM certificate")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestBootstrapTokenExpires(t *testing.T) {
	h := newHarness(t)
	var start api.StartRunResponse
	call(t, h.socketClient(), "POST", "http://local/v1/runs", "",
		api.StartRunRequest{Agent: "researcher", Grants: []string{"fs-read"}}, &start)
	h.nowFunc = func() time.Time { return time.Now().Add(3 * time.Minute) }
	_, csrPEM := newCSR(t)
	st, e := call(t, h.tlsClient(nil), "POST", h.tlsURL+"/v1/svid/exchange", "",
		api.ExchangeRequest{BootstrapToken: start.BootstrapToken, CSR: csrPEM}, nil)
	if st != http.StatusUnauthorized || e.Code != api.CodeBootstrapInvalid {
		t.Errorf("expired token: status %d code %q; want 401 %s", st, e.Code, api.CodeBootstrapInvalid)
	}
}

func TestStartRunWithCSR(t *testing.T) {
	h := newHarness(t)
	_, csrPEM := newCSR(t)
	var start api.StartRunResponse
	st, e := call(t, h.socketClient(), "POST", "http://local/v1/runs", "",
		api.StartRunRequest{Agent: "researcher", Grants: []string{"fs-read"}, CSR: csrPEM}, &start)
	if st != http.StatusCreated {
		t.Fatalf("status %d %+v", st, e)
	}
	if start.SVID == nil || start.BootstrapToken != "" {
		t.Fatalf("got SVID %v token %q; want an SVID and no token", start.SVID, start.BootstrapToken)
	}
}

func TestStartRunRejectsBadCSR(t *testing.T) {
	h := newHarness(t)
	st, e := call(t, h.socketClient(), "POST", "http://local/v1/runs", "",
		api.StartRunRequest{Agent: "researcher", Grants: []string{"fs-read"}, CSR: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"}, nil)
	if st != http.StatusBadRequest || e.Code != api.CodeCSRInvalid {
		t.Errorf("status %d code %q; want 400 %s", st, e.Code, api.CodeCSRInvalid)
	}
	if len(h.runs.runs) != 0 {
		t.Error("a run was started although the CSR was invalid")
	}
}

func TestAgentReadsOnlyOwnRun(t *testing.T) {
	h := newHarness(t)
	run, agent := h.startAgent(t, "fs-read")
	other, _ := h.startAgent(t, "fs-read")

	var got api.Run
	if st, e := call(t, agent, "GET", h.tlsURL+"/v1/runs/"+run.ID, "", nil, &got); st != http.StatusOK {
		t.Fatalf("own run: status %d %+v", st, e)
	}
	if got.ID != run.ID {
		t.Errorf("got run %s, want %s", got.ID, run.ID)
	}
	if st, e := call(t, agent, "GET", h.tlsURL+"/v1/runs/"+other.ID, "", nil, nil); st != http.StatusForbidden {
		t.Errorf("other run: status %d %+v; want 403", st, e)
	}
	var id api.Identity
	call(t, agent, "GET", h.tlsURL+"/v1/whoami", "", nil, &id)
	if id.Kind != "agent" || id.RunID != run.ID {
		t.Errorf("whoami = %+v; want agent of run %s", id, run.ID)
	}
}

func TestAgentCannotActAsSponsor(t *testing.T) {
	h := newHarness(t)
	run, agent := h.startAgent(t, "fs-read")
	other, _ := h.startAgent(t, "fs-read")
	h.runs.addApproval(api.Approval{ID: "ap1", RunID: run.ID, Tool: "write", Status: "pending"})

	cases := []struct {
		name, method, path string
		body               any
	}{
		{"approve", "POST", "/v1/approvals/ap1/approve", api.DecisionRequest{Comment: "self"}},
		{"deny", "POST", "/v1/approvals/ap1/deny", api.DecisionRequest{}},
		{"list approvals", "GET", "/v1/approvals", nil},
		{"revoke other", "POST", "/v1/runs/" + other.ID + "/revoke", api.RevokeRequest{}},
		{"revoke own", "POST", "/v1/runs/" + run.ID + "/revoke", api.RevokeRequest{}},
		{"start run", "POST", "/v1/runs", api.StartRunRequest{Agent: "researcher", Grants: []string{"fs-read"}}},
		{"list runs", "GET", "/v1/runs", nil},
		{"break glass", "POST", "/v1/breakglass", api.BreakGlassRequest{Grant: "db-admin", Agent: "researcher", Reason: "production is down", TTL: "10m"}},
		{"deactivate", "POST", "/v1/sponsors/deactivate", api.DeactivateSponsorRequest{Issuer: "local", Subject: "root"}},
		{"reactivate", "POST", "/v1/sponsors/reactivate", api.SponsorRequest{Issuer: "local", Subject: "root"}},
		{"delegate from other", "POST", "/v1/runs/" + other.ID + "/delegate", api.DelegateRequest{Agent: "x", Grants: []string{"fs-read"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, e := call(t, agent, c.method, h.tlsURL+c.path, "", c.body, nil)
			if st != http.StatusForbidden || e.Code != api.CodeForbidden {
				t.Errorf("status %d code %q; want 403 %s", st, e.Code, api.CodeForbidden)
			}
		})
	}
	if a := h.runs.approvals["ap1"]; a.Status != "pending" {
		t.Errorf("approval is %s after the agent's attempts; want pending", a.Status)
	}
	if r := h.runs.runs[other.ID]; r.Status != RunActive {
		t.Errorf("other run is %s; want active", r.Status)
	}
	if len(h.runs.deactivated) != 0 || len(h.runs.breakGlass) != 0 {
		t.Error("an agent deactivated a sponsor or opened break-glass access")
	}
}

func TestAgentDelegatesAndChildEnrolls(t *testing.T) {
	h := newHarness(t)
	run, agent := h.startAgent(t, "fs-read", "web-search")
	var child api.StartRunResponse
	st, e := call(t, agent, "POST", h.tlsURL+"/v1/runs/"+run.ID+"/delegate", "",
		api.DelegateRequest{Agent: "summarizer", Grants: []string{"fs-read"}}, &child)
	if st != http.StatusCreated {
		t.Fatalf("delegate: status %d %+v", st, e)
	}
	if child.Run.ParentID != run.ID || child.BootstrapToken == "" {
		t.Fatalf("child = %+v; want parent %s and a bootstrap token", child.Run, run.ID)
	}
	if len(child.Run.Chain) != 2 {
		t.Errorf("child chain has %d hops, want 2", len(child.Run.Chain))
	}
	_, csrPEM := newCSR(t)
	var svid api.SVID
	if st, e := call(t, h.tlsClient(nil), "POST", h.tlsURL+"/v1/svid/exchange", "",
		api.ExchangeRequest{BootstrapToken: child.BootstrapToken, CSR: csrPEM}, &svid); st != http.StatusOK {
		t.Fatalf("child exchange: status %d %+v", st, e)
	}
	if !strings.Contains(svid.SPIFFEID, "/agents/summarizer/runs/"+child.Run.ID) {
		t.Errorf("child SVID %s", svid.SPIFFEID)
	}

	st, e = call(t, agent, "POST", h.tlsURL+"/v1/runs/"+run.ID+"/delegate", "",
		api.DelegateRequest{Agent: "summarizer", Grants: []string{"fs-write"}}, nil)
	if st != http.StatusForbidden {
		t.Errorf("widening delegate: status %d %+v; want 403", st, e)
	}
}

func TestRenewSVID(t *testing.T) {
	h := newHarness(t)
	run, agent := h.startAgent(t, "fs-read")
	_, csrPEM := newCSR(t)
	var svid api.SVID
	if st, e := call(t, agent, "POST", h.tlsURL+"/v1/svid/renew", "", api.RenewRequest{CSR: csrPEM}, &svid); st != http.StatusOK {
		t.Fatalf("renew: status %d %+v", st, e)
	}
	if svid.SPIFFEID != run.SPIFFEID {
		t.Errorf("renewed SVID names %s, want %s", svid.SPIFFEID, run.SPIFFEID)
	}

	// A revoked run gets no new SVID.
	call(t, h.socketClient(), "POST", "http://local/v1/runs/"+run.ID+"/revoke", "", api.RevokeRequest{Reason: "done"}, nil)
	st, e := call(t, agent, "POST", h.tlsURL+"/v1/svid/renew", "", api.RenewRequest{CSR: csrPEM}, nil)
	if st != http.StatusForbidden {
		t.Errorf("renew after revoke: status %d %+v; want 403", st, e)
	}
}

func TestRenewRequiresSVID(t *testing.T) {
	h := newHarness(t)
	_, csrPEM := newCSR(t)
	st, e := call(t, h.tlsClient(nil), "POST", h.tlsURL+"/v1/svid/renew", "", api.RenewRequest{CSR: csrPEM}, nil)
	if st != http.StatusUnauthorized || e.Code != api.CodeUnauthenticated {
		t.Errorf("status %d code %q; want 401 %s", st, e.Code, api.CodeUnauthenticated)
	}
}

func TestCSRClaimingOtherIdentity(t *testing.T) {
	h := newHarness(t)
	var start api.StartRunResponse
	call(t, h.socketClient(), "POST", "http://local/v1/runs", "",
		api.StartRunRequest{Agent: "researcher", Grants: []string{"fs-read"}}, &start)
	csrPEM := csrWithURI(t, "spiffe://agentauth.local/agentauth/gateway")
	st, e := call(t, h.tlsClient(nil), "POST", h.tlsURL+"/v1/svid/exchange", "",
		api.ExchangeRequest{BootstrapToken: start.BootstrapToken, CSR: csrPEM}, nil)
	if st != http.StatusBadRequest || e.Code != api.CodeCSRInvalid {
		t.Errorf("status %d code %q; want 400 %s", st, e.Code, api.CodeCSRInvalid)
	}
}

func csrWithURI(t *testing.T, uri string) string {
	t.Helper()
	key, _ := newCSR(t)
	u, _ := url.Parse(uri)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{URIs: []*url.URL{u}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}
