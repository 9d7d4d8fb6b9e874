package agentauth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agentauth/agentauth/agentauth/control/api"
)

// StartRun starts a run as the sponsor that ctl authenticates (the OS user,
// on the control socket) and acts as that run in this process. The run's
// key is generated here, in memory, and its CSR goes with the start
// request, so no bootstrap token is needed. e names the gateway and the
// control URL, which renewal uses; its token is ignored.
func StartRun(ctx context.Context, ctl *Control, req api.StartRunRequest, e Enrollment,
	opts ...Option) (*Run, error) {
	if e.Control == "" {
		return nil, errors.New("agentauth: the control URL is needed to renew the SVID; set Enrollment.Control")
	}
	key, csr, err := newKeyAndCSR()
	if err != nil {
		return nil, err
	}
	req.CSR = csr
	resp, err := ctl.StartRun(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("agentauth: start run: %w", err)
	}
	if resp.SVID == nil {
		return nil, errors.New("agentauth: the gateway returned no SVID for the CSR")
	}
	id, err := spiffeid.FromString(resp.Run.SPIFFEID)
	if err != nil {
		return nil, fmt.Errorf("agentauth: invalid run SPIFFE ID: %w", err)
	}
	roots, err := parseCerts([]byte(resp.SVID.BundlePEM))
	if err != nil || len(roots) == 0 {
		return nil, errors.New("agentauth: the gateway returned no trust bundle")
	}
	o := joinOptions{log: discardLogger()}
	for _, opt := range opts {
		opt(&o)
	}
	e.BootstrapToken, e.RunID, e.SPIFFEID = "", resp.Run.ID, resp.Run.SPIFFEID
	e.ExpiresAt = resp.Run.ExpiresAt
	r := newRun(e, id.TrustDomain(), x509bundle.FromX509Authorities(id.TrustDomain(), roots), o)
	if err := r.install(key, *resp.SVID); err != nil {
		return nil, err
	}
	if e.TrustBundle == "" {
		// Children and renewals need the bundle as a file too.
		if e.TrustBundle, err = saveBundle(resp.SVID.BundlePEM); err != nil {
			return nil, err
		}
		r.enroll.TrustBundle, r.ownBundle = e.TrustBundle, true
	}
	r.startRenewal()
	return r, nil
}

// saveBundle writes the bundle to a private temporary file, removed by
// Run.Close.
func saveBundle(pemText string) (string, error) {
	dir, err := os.MkdirTemp("", "agentauth-bundle-")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "bundle.pem")
	return path, os.WriteFile(path, []byte(pemText), 0o600)
}
