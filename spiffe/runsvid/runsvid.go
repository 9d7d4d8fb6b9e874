// Package runsvid keeps an agent run's X.509-SVID fresh on the agent side.
//
// A Source generates the run's key pair in the agent's process, sends only
// a CSR to the gateway through a SignFunc, and renews the SVID with a new
// key at half of its lifetime. It implements go-spiffe's x509svid.Source,
// so an mTLS client built with tlsconfig.MTLSClientConfig picks up each
// renewal on its next handshake. Once the SVID has expired and no renewal
// succeeded, GetX509SVID returns an error instead of a stale SVID.
package runsvid

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/agentauth/agentauth/spiffe/csr"
)

// SignFunc sends csrDER to the gateway and returns the SVID chain it signed,
// leaf first.
type SignFunc func(ctx context.Context, csrDER []byte) ([]*x509.Certificate, error)

// Waits between renewal attempts after a failure.
const (
	retryMin = time.Second
	retryMax = 30 * time.Second
)

// Source holds a run's current X.509-SVID and renews it in the background
// until Close. It is safe for concurrent use.
type Source struct {
	sign   SignFunc
	logger *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.RWMutex
	svid *x509svid.SVID
}

// New gets the first SVID through sign, failing if that fails, and starts
// renewing it. logger may be nil.
func New(ctx context.Context, sign SignFunc, logger *slog.Logger) (*Source, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Source{sign: sign, logger: logger, done: make(chan struct{})}
	svid, err := s.fetch(ctx, spiffeid.ID{})
	if err != nil {
		return nil, err
	}
	s.svid = svid

	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	go s.renewLoop(bg)
	return s, nil
}

// fetch makes a key and a CSR, has them signed, and checks that the chain
// certifies the key for one SPIFFE ID (the same as want, unless want is
// zero).
func (s *Source) fetch(ctx context.Context, want spiffeid.ID) (*x509svid.SVID, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("runsvid: generate key: %w", err)
	}
	der, err := csr.Create(key)
	if err != nil {
		return nil, err
	}
	chain, err := s.sign(ctx, der)
	if err != nil {
		return nil, fmt.Errorf("runsvid: sign CSR: %w", err)
	}
	if len(chain) == 0 {
		return nil, errors.New("runsvid: gateway returned no certificate")
	}
	if pub, ok := chain[0].PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(key.Public()) {
		return nil, errors.New("runsvid: gateway returned an SVID for another key")
	}
	id, err := x509svid.IDFromCert(chain[0])
	if err != nil {
		return nil, fmt.Errorf("runsvid: gateway returned an SVID without a SPIFFE ID: %w", err)
	}
	if !want.IsZero() && id != want {
		return nil, fmt.Errorf("runsvid: renewal returned %q, not the run's %q", id, want)
	}
	return &x509svid.SVID{ID: id, Certificates: chain, PrivateKey: key}, nil
}

// GetX509SVID returns the current SVID, or an error once it has expired.
func (s *Source) GetX509SVID() (*x509svid.SVID, error) {
	s.mu.RLock()
	svid := s.svid
	s.mu.RUnlock()
	if leaf := svid.Certificates[0]; !time.Now().Before(leaf.NotAfter) {
		return nil, fmt.Errorf("runsvid: SVID of %q expired at %s and was not renewed", svid.ID,
			leaf.NotAfter.Format(time.RFC3339))
	}
	return svid, nil
}

// ID returns the run's SPIFFE ID.
func (s *Source) ID() spiffeid.ID {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.svid.ID
}

func (s *Source) renewLoop(ctx context.Context) {
	defer close(s.done)
	wait := retryMin
	for {
		s.mu.RLock()
		current := s.svid
		s.mu.RUnlock()
		leaf := current.Certificates[0]
		renewAt := leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)

		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(renewAt)):
		}

		next, err := s.fetch(ctx, current.ID)
		if err != nil {
			s.logger.WarnContext(ctx, "run SVID renewal failed; retrying",
				"spiffe_id", current.ID.String(), "retry_in", wait, "error", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, retryMax)
			continue
		}
		wait = retryMin
		s.mu.Lock()
		s.svid = next
		s.mu.Unlock()
		s.logger.DebugContext(ctx, "run SVID renewed", "spiffe_id", next.ID.String(),
			"expires", next.Certificates[0].NotAfter)
	}
}

// Close stops renewing and waits for the renewal goroutine to end.
func (s *Source) Close() error {
	s.cancel()
	<-s.done
	return nil
}
