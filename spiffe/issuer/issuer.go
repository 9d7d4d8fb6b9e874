package issuer

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// CAMinter returns a certificate chain for a new signing CA key, valid for
// about ttl: chain[0] certifies key as a CA and any further certificates
// lead toward a root of the trust bundle, which the chain leaves out.
type CAMinter func(ctx context.Context, key crypto.Signer, ttl time.Duration) ([]*x509.Certificate, error)

// JWTKeyPublisher makes a new JWT public key known to the verifiers of the
// trust domain before the issuer mints with it. SPIRE mode sets it.
type JWTKeyPublisher func(ctx context.Context, kid string, key crypto.PublicKey, expires time.Time) error

// Config configures an Issuer.
type Config struct {
	TrustDomain spiffeid.TrustDomain
	SVIDTTL     time.Duration // maximum lifetime of an X.509-SVID
	JWTTTL      time.Duration // maximum lifetime of a JWT-SVID
	SigningTTL  time.Duration // lifetime requested for each signing CA
	MintCA      CAMinter
	// PublishJWTKey is optional.
	PublishJWTKey JWTKeyPublisher
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Logger receives rotations and rotation failures; silent when nil.
	Logger *slog.Logger
}

// Issuer signs X.509-SVIDs and mints JWT-SVIDs for one trust domain. It is
// safe for concurrent use.
type Issuer struct {
	cfg Config

	rotating sync.Mutex // held by the one caller making a new generation

	mu   sync.Mutex
	gens []*generation // oldest first; the last one signs
}

// New checks cfg and makes the first generation.
func New(ctx context.Context, cfg Config) (*Issuer, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	i := &Issuer{cfg: cfg}
	g, err := i.newGeneration(ctx, cfg.Now())
	if err != nil {
		return nil, err
	}
	i.gens = []*generation{g}
	return i, nil
}

func (c *Config) check() error {
	var errs []error
	if c.TrustDomain.IsZero() {
		errs = append(errs, errors.New("issuer: trust domain is empty"))
	}
	if c.SVIDTTL <= 0 || c.JWTTTL <= 0 || c.SigningTTL <= 0 {
		errs = append(errs, fmt.Errorf("issuer: SVID TTL %v, JWT TTL %v and signing TTL %v must all be positive",
			c.SVIDTTL, c.JWTTTL, c.SigningTTL))
	}
	if c.MintCA == nil {
		errs = append(errs, errors.New("issuer: no CA minter"))
	}
	return errors.Join(errs...)
}

// TrustDomain returns the trust domain the issuer signs for.
func (i *Issuer) TrustDomain() spiffeid.TrustDomain {
	return i.cfg.TrustDomain
}

// current returns the generation to sign with at now, rotating first when
// the newest one is past its half-life. One caller rotates while the others
// go on signing with the current generation, which still has half of its
// lifetime left. So a slow CAMinter, such as a SPIRE server call, delays
// only that caller. When rotation fails, the current generation is kept while it can
// still sign a full-length SVID.
func (i *Issuer) current(ctx context.Context, now time.Time) (*generation, error) {
	g := i.newest()
	if now.Before(g.rotate) {
		return g, nil
	}
	if !i.rotating.TryLock() {
		if i.canCover(g, now) {
			return g, nil
		}
		i.rotating.Lock()
	}
	defer i.rotating.Unlock()

	if g = i.newest(); now.Before(g.rotate) {
		return g, nil // another caller rotated meanwhile
	}
	next, err := i.newGeneration(ctx, now)
	if err != nil {
		if i.canCover(g, now) {
			i.cfg.Logger.WarnContext(ctx, "signing CA rotation failed; keeping the current one",
				"expires", g.expires, "error", err)
			return g, nil
		}
		return nil, fmt.Errorf("%w; the current signing CA expires at %s", err, g.expires.Format(time.RFC3339))
	}

	i.mu.Lock()
	i.gens = append(pruneExpired(i.gens, now), next)
	i.mu.Unlock()
	i.cfg.Logger.InfoContext(ctx, "signing CA rotated",
		"serial", next.chain[0].SerialNumber.String(), "expires", next.expires, "jwt_kid", next.jwtKID)
	return next, nil
}

func (i *Issuer) newest() *generation {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.gens[len(i.gens)-1]
}

// canCover reports whether g can still sign an SVID of the full TTL.
func (i *Issuer) canCover(g *generation, now time.Time) bool {
	return now.Add(i.cfg.SVIDTTL).Before(g.expires)
}

func pruneExpired(gens []*generation, now time.Time) []*generation {
	kept := make([]*generation, 0, len(gens)+1)
	for _, g := range gens {
		if now.Before(g.expires) {
			kept = append(kept, g)
		}
	}
	return kept
}

// SigningChain returns the chain of the signing CA in use: the CA's own
// certificate first.
func (i *Issuer) SigningChain(ctx context.Context) ([]*x509.Certificate, error) {
	g, err := i.current(ctx, i.cfg.Now())
	if err != nil {
		return nil, err
	}
	return g.chain, nil
}

// JWTAuthorities returns the public keys, by key id, of every JWT key that
// has not expired: the one minting now and the ones it replaced.
func (i *Issuer) JWTAuthorities() map[string]crypto.PublicKey {
	now := i.cfg.Now()
	i.mu.Lock()
	defer i.mu.Unlock()
	keys := make(map[string]crypto.PublicKey, len(i.gens))
	for _, g := range i.gens {
		if now.Before(g.expires) {
			keys[g.jwtKID] = g.jwtKey.Public()
		}
	}
	return keys
}

// JWTBundle returns JWTAuthorities as a bundle of the issuer's trust domain.
func (i *Issuer) JWTBundle() *jwtbundle.Bundle {
	return jwtbundle.FromJWTAuthorities(i.cfg.TrustDomain, i.JWTAuthorities())
}
