package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"

	"github.com/agentauth/agentauth/agentauth"
	"github.com/agentauth/agentauth/internal/oidcop"
)

// The demo's second human, who signs in at the demo's OpenID provider.
const (
	approverName  = "bob"
	approverGroup = "data-stewards"
	oidcClientID  = "agentauth-demo"
	oidcRedirect  = "https://127.0.0.1/demo/callback"
)

// startIdentityProvider starts an OpenID provider on loopback that knows
// the approver. The gateway's control API verifies the ID tokens it signs,
// as it would those of a company's provider.
func startIdentityProvider() (*oidcop.Provider, error) {
	op, err := oidcop.New()
	if err != nil {
		return nil, err
	}
	op.AddClient(&oidcop.Client{ID: oidcClientID, Redirects: []string{oidcRedirect}})
	op.AddUser(approverName, oidcop.User{Subject: approverName, Email: approverName + "@example.org",
		Groups: []string{approverGroup}})
	return op, nil
}

// approval makes a call that needs a data steward's approval, and has
// the second human approve it while the call waits.
func (d *demo) approval(ctx context.Context, a *actor) error {
	d.say("\n6. a write that needs a data steward's approval")
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.call(ctx, "fs__write_file", map[string]any{
			"path":    filepath.Join(d.files, "reports", "launch-summary.md"),
			"content": "# Launch summary\nShip on Monday; every run has its own identity.\n",
		})
	}()
	err := d.approveAs(ctx, approverName)
	<-done
	return err
}

// approveAs signs in as the approver, waits for the pending approval of
// the researcher's run and approves it.
func (d *demo) approveAs(ctx context.Context, user string) error {
	token, err := d.idp.IDToken(user, oidcClientID, oidcRedirect)
	if err != nil {
		return fmt.Errorf("sign %s in at the demo identity provider: %w", user, err)
	}
	td := d.g.Authority.TrustDomain()
	bundle, err := x509bundle.Parse(td, d.bundlePEM)
	if err != nil {
		return err
	}
	gatewayID, err := spiffeid.FromSegments(td, "agentauth", "gateway")
	if err != nil {
		return err
	}
	// A human checks the gateway's SVID against the trust bundle, and
	// authenticates with the ID token, not with a certificate.
	tlsConfig := tlsconfig.TLSClientConfig(bundle, tlsconfig.AuthorizeID(gatewayID))
	hc := &http.Client{Timeout: 10 * time.Second, Transport: bearer{token: token,
		next: &http.Transport{TLSClientConfig: tlsConfig}}}
	ctl := agentauth.NewControl("https://"+d.g.ControlAddr, hc)
	who, err := ctl.Whoami(ctx)
	if err != nil {
		return fmt.Errorf("%s at the control API: %w", user, err)
	}
	d.say("  %s signs in at the OpenID provider %s (groups %v)", who.Sponsor.Subject, who.Sponsor.Issuer, who.Sponsor.Groups)

	deadline := time.Now().Add(d.approvalWait())
	for time.Now().Before(deadline) {
		list, err := ctl.ListApprovals(ctx, "pending")
		if err != nil {
			return err
		}
		for _, ap := range list {
			if ap.RunID != d.res.RootRunID {
				continue
			}
			args, _ := json.Marshal(ap.Arguments)
			d.say("  %s sees approval %s: %s/%s for run %s (purpose %q)\n    arguments %s",
				user, ap.ID, ap.Server, ap.Tool, shortID(ap.RunID), ap.Purpose, oneLine(string(args), 100))
			if _, err := ctl.Approve(ctx, ap.ID, "report path and content look fine"); err != nil {
				return fmt.Errorf("%s approves %s: %w", user, ap.ID, err)
			}
			d.say("  %s approved it", user)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("no approval of run %s appeared within %v", d.res.RootRunID, d.approvalWait())
}

func (d *demo) approvalWait() time.Duration {
	if d.o.ApprovalWait > 0 {
		return d.o.ApprovalWait
	}
	return 30 * time.Second
}

// bearer adds an OIDC ID token to every request.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}
