package spiffe

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/agentauth/agentauth/agentauth/config"
	"github.com/agentauth/agentauth/spiffe/ca"
	"github.com/agentauth/agentauth/spiffe/spire"
)

// CADir is the folder under the state folder that holds the embedded CA's
// root key and certificate.
const CADir = "ca"

// Open returns the authority that cfg selects: SPIRE mode when
// cfg.SPIRE.Socket is set (config.Load fills it from
// SPIFFE_ENDPOINT_SOCKET), else the embedded CA with its root in
// <state_dir>/ca. In SPIRE mode cfg.SPIRE.ServerAddress is the SPIRE
// server API's TCP address. Open blocks until the authority can sign, or
// until ctx ends. Give ctx a deadline, because a SPIRE agent that has not
// attested yet keeps the first Workload API fetch waiting.
func Open(ctx context.Context, cfg config.Config, logger *slog.Logger) (Authority, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	td, err := trustDomain(cfg)
	if err != nil {
		return nil, err
	}

	if cfg.SPIRE.Socket != "" {
		a, err := spire.Open(ctx, spire.Config{
			WorkloadSocket: cfg.SPIRE.Socket,
			ServerAddress:  cfg.SPIRE.ServerAddress,
			TrustDomain:    td,
			SVIDTTL:        cfg.CA.SVIDTTL,
			JWTTTL:         cfg.CA.JWTTTL,
			SigningTTL:     cfg.CA.SigningTTL,
			Logger:         logger,
		})
		if err != nil {
			return nil, err
		}
		return a, nil
	}

	c, err := ca.Open(ctx, ca.Config{
		Dir:         filepath.Join(cfg.StateDir, CADir),
		TrustDomain: td,
		SVIDTTL:     cfg.CA.SVIDTTL,
		JWTTTL:      cfg.CA.JWTTTL,
		SigningTTL:  cfg.CA.SigningTTL,
		RootTTL:     cfg.CA.RootTTL,
		Logger:      logger,
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// trustDomain parses cfg.TrustDomain, which may be empty only in SPIRE
// mode, where the Workload API SVID names the trust domain.
func trustDomain(cfg config.Config) (spiffeid.TrustDomain, error) {
	if cfg.TrustDomain == "" && cfg.SPIRE.Socket != "" {
		return spiffeid.TrustDomain{}, nil
	}
	td, err := spiffeid.TrustDomainFromString(cfg.TrustDomain)
	if err != nil {
		return spiffeid.TrustDomain{}, fmt.Errorf("spiffe: trust_domain %q: %w; use a lower-case DNS-like name such as example.org",
			cfg.TrustDomain, err)
	}
	return td, nil
}
