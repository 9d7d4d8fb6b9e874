package agentauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/agentauth/agentauth/agentauth/control/api"
)

// Control is a client of the control API.
type Control struct {
	base string
	hc   *http.Client
}

// DialSocket returns a client of the control socket at path; the gateway
// takes the calling OS user as the sponsor.
func DialSocket(path string) *Control {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", path)
	}}
	return &Control{base: "http://agentauth", hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// NewControl returns a client of the control API at baseURL that sends its
// requests with hc (which carries the TLS configuration).
func NewControl(baseURL string, hc *http.Client) *Control {
	return &Control{base: baseURL, hc: hc}
}

// APIError is an error reply from the control API.
type APIError struct {
	Status  int
	Code    string // one of the api.Code constants
	Message string // the failure and the fix, for people
}

func (e *APIError) Error() string {
	return fmt.Sprintf("control API: %s (%s, HTTP %d)", e.Message, e.Code, e.Status)
}

// IsCode reports whether err is an API error with the given code.
func IsCode(err error, code string) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == code
}

func (c *Control) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	// The gateway continues the caller's trace, so starting or delegating
	// a run joins the agent's trace.
	otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("control API %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e api.Error
		if json.Unmarshal(data, &e) != nil || e.Code == "" {
			e.Code, e.Message = api.CodeInternal, fmt.Sprintf("unexpected reply %q", truncate(data))
		}
		return &APIError{Status: resp.StatusCode, Code: e.Code, Message: e.Message}
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	return json.Unmarshal(data, out)
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

// Whoami returns the caller as the gateway identifies it.
func (c *Control) Whoami(ctx context.Context) (api.Identity, error) {
	var id api.Identity
	return id, c.do(ctx, "GET", "/v1/whoami", nil, &id)
}

// StartRun starts a run for the calling sponsor.
func (c *Control) StartRun(ctx context.Context, req api.StartRunRequest) (api.StartRunResponse, error) {
	var r api.StartRunResponse
	return r, c.do(ctx, "POST", "/v1/runs", req, &r)
}

// GetRun returns one run with its delegation chain.
func (c *Control) GetRun(ctx context.Context, id string) (api.Run, error) {
	var r api.Run
	return r, c.do(ctx, "GET", "/v1/runs/"+url.PathEscape(id), nil, &r)
}

// ListRuns returns runs; query may hold status, agent, limit and all.
func (c *Control) ListRuns(ctx context.Context, query url.Values) ([]api.Run, error) {
	var r []api.Run
	return r, c.do(ctx, "GET", "/v1/runs?"+query.Encode(), nil, &r)
}

// Revoke revokes a run and everything it delegated.
func (c *Control) Revoke(ctx context.Context, id, reason string) (api.Run, error) {
	var r api.Run
	return r, c.do(ctx, "POST", "/v1/runs/"+url.PathEscape(id)+"/revoke", api.RevokeRequest{Reason: reason}, &r)
}

// ListApprovals returns approvals with the status ("" means pending).
func (c *Control) ListApprovals(ctx context.Context, status string) ([]api.Approval, error) {
	var r []api.Approval
	return r, c.do(ctx, "GET", "/v1/approvals?"+url.Values{"status": {status}}.Encode(), nil, &r)
}

// Approve approves a pending call with a comment.
func (c *Control) Approve(ctx context.Context, id, comment string) (api.Approval, error) {
	var r api.Approval
	return r, c.do(ctx, "POST", "/v1/approvals/"+url.PathEscape(id)+"/approve", api.DecisionRequest{Comment: comment}, &r)
}

// Deny denies a pending call with a comment.
func (c *Control) Deny(ctx context.Context, id, comment string) (api.Approval, error) {
	var r api.Approval
	return r, c.do(ctx, "POST", "/v1/approvals/"+url.PathEscape(id)+"/deny", api.DecisionRequest{Comment: comment}, &r)
}

// BreakGlass starts a break-glass run for the calling sponsor: one
// break-glass grant, time-boxed, flagged in every decision it produces.
// The reply carries the run's bootstrap token, as StartRun's does.
func (c *Control) BreakGlass(ctx context.Context, req api.BreakGlassRequest) (api.StartRunResponse, error) {
	var r api.StartRunResponse
	return r, c.do(ctx, "POST", "/v1/breakglass", req, &r)
}

// DeactivateSponsor offboards a human (admins only): every run they
// sponsored stops and they can start no new run until reactivated.
func (c *Control) DeactivateSponsor(ctx context.Context, issuer, subject, reason string) error {
	return c.do(ctx, "POST", "/v1/sponsors/deactivate",
		api.SponsorRequest{Issuer: issuer, Subject: subject, Reason: reason}, nil)
}

// ReactivateSponsor lets a deactivated human start runs again (admins
// only); the runs the deactivation stopped stay stopped.
func (c *Control) ReactivateSponsor(ctx context.Context, issuer, subject, reason string) error {
	return c.do(ctx, "POST", "/v1/sponsors/reactivate",
		api.SponsorRequest{Issuer: issuer, Subject: subject, Reason: reason}, nil)
}

// Bundle returns the trust bundle PEM of the gateway's trust domain.
func (c *Control) Bundle(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+"/v1/bundle", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("control API GET /v1/bundle: HTTP %d", resp.StatusCode)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}

func (c *Control) exchange(ctx context.Context, token, csr string) (api.SVID, error) {
	var s api.SVID
	return s, c.do(ctx, "POST", "/v1/svid/exchange", api.ExchangeRequest{BootstrapToken: token, CSR: csr}, &s)
}

func (c *Control) renew(ctx context.Context, csr string) (api.SVID, error) {
	var s api.SVID
	return s, c.do(ctx, "POST", "/v1/svid/renew", api.RenewRequest{CSR: csr}, &s)
}

func (c *Control) delegate(ctx context.Context, runID string, req api.DelegateRequest) (api.StartRunResponse, error) {
	var r api.StartRunResponse
	return r, c.do(ctx, "POST", "/v1/runs/"+url.PathEscape(runID)+"/delegate", req, &r)
}
