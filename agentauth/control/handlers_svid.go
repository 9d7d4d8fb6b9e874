package control

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agentauth/agentauth/agentauth/control/api"
	"github.com/agentauth/agentauth/spiffe/csr"
)

// RunActive is the status of a run that may still act.
const RunActive = "active"

func (s *Server) handleWhoami(w http.ResponseWriter, _ *http.Request, c caller) {
	if c.agent != nil {
		writeJSON(w, http.StatusOK, api.Identity{Kind: "agent",
			SPIFFEID: c.agent.ID.String(), RunID: c.agent.RunID})
		return
	}
	writeJSON(w, http.StatusOK, api.Identity{Kind: "sponsor", Sponsor: c.sponsor})
}

func (s *Server) handleBundle(w http.ResponseWriter, _ *http.Request, _ caller) {
	pemText, err := s.bundlePEM()
	if err != nil {
		s.serviceError(w, "read trust bundle", err)
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	_, _ = w.Write([]byte(pemText))
}

func (s *Server) bundlePEM() (string, error) {
	b, err := s.deps.Bundles.GetX509BundleForTrustDomain(s.td)
	if err != nil {
		return "", fmt.Errorf("trust bundle of %s: %w", s.td, err)
	}
	return certsPEM(b.X509Authorities()), nil
}

func certsPEM(certs []*x509.Certificate) string {
	var buf bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return buf.String()
}

func (s *Server) handleExchange(w http.ResponseWriter, r *http.Request, _ caller) {
	var req api.ExchangeRequest
	if aerr := decode(w, r, &req); aerr != nil {
		writeError(w, aerr)
		return
	}
	der, err := ParseCSR(req.CSR)
	if err != nil {
		writeError(w, &api.Error{Code: api.CodeCSRInvalid, Message: err.Error()})
		return
	}
	e, ok := s.bootstrap.Redeem(req.BootstrapToken)
	if !ok {
		writeError(w, &api.Error{Code: api.CodeBootstrapInvalid, Message: "the bootstrap token is " +
			"unknown, used or expired; start the run again to get a new one"})
		return
	}
	s.signForRun(w, r, e.RunID, der)
}

func (s *Server) handleRenew(w http.ResponseWriter, r *http.Request, c caller) {
	var req api.RenewRequest
	if aerr := decode(w, r, &req); aerr != nil {
		writeError(w, aerr)
		return
	}
	der, err := ParseCSR(req.CSR)
	if err != nil {
		writeError(w, &api.Error{Code: api.CodeCSRInvalid, Message: err.Error()})
		return
	}
	s.signForRun(w, r, c.agent.RunID, der)
}

// signForRun signs der for an active run and replies with the SVID.
func (s *Server) signForRun(w http.ResponseWriter, r *http.Request, runID string, der []byte) {
	run, err := s.deps.Runs.GetRun(r.Context(), runID)
	if err != nil {
		s.serviceError(w, "sign SVID", err)
		return
	}
	svid, aerr := s.issueSVID(r, run, der)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	s.log.Info("run SVID issued", "run", run.ID, "expires", svid.ExpiresAt)
	writeJSON(w, http.StatusOK, svid)
}

// issueSVID signs an SVID for an active run, never valid past the run's
// expiry.
func (s *Server) issueSVID(r *http.Request, run api.Run, der []byte) (*api.SVID, *api.Error) {
	now := s.now()
	if run.Status != RunActive || !now.Before(run.ExpiresAt) {
		return nil, errForbidden(fmt.Sprintf("run %s is %s; start a new run", run.ID, runState(run, now)))
	}
	id, err := spiffeid.FromString(run.SPIFFEID)
	if err != nil {
		return nil, s.internal("sign SVID", fmt.Errorf("run %s has invalid SPIFFE ID: %w", run.ID, err))
	}
	if _, err := csr.Check(der, id); err != nil {
		return nil, &api.Error{Code: api.CodeCSRInvalid, Message: err.Error()}
	}
	notAfter := run.ExpiresAt
	if ttl := s.cfg.CA.SVIDTTL; ttl > 0 && now.Add(ttl).Before(notAfter) {
		notAfter = now.Add(ttl)
	}
	chain, err := s.deps.Signer.SignRunCSR(r.Context(), der, id, notAfter)
	if err != nil {
		return nil, s.internal("sign SVID", err)
	}
	bundle, err := s.bundlePEM()
	if err != nil {
		return nil, s.internal("sign SVID", err)
	}
	return &api.SVID{SPIFFEID: id.String(), CertChainPEM: certsPEM(chain), BundlePEM: bundle,
		ExpiresAt: chain[0].NotAfter}, nil
}

func runState(run api.Run, now time.Time) string {
	if run.Status == RunActive {
		return "expired"
	}
	return run.Status
}

func (s *Server) internal(op string, err error) *api.Error {
	s.log.Error("control request failed", "op", op, "err", err)
	return &api.Error{Code: api.CodeInternal, Message: op + " failed inside the gateway; " +
		"see the gateway log and retry"}
}
