package issuer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// A generation is one signing CA and one JWT key made together. The
// issuer signs with the newest generation and keeps older ones only for
// their JWT public keys.
type generation struct {
	caKey   crypto.Signer
	chain   []*x509.Certificate // chain[0] certifies caKey
	jwtKID  string
	jwtKey  *ecdsa.PrivateKey
	signer  jose.Signer
	rotate  time.Time // when the next generation takes over
	expires time.Time // chain[0].NotAfter and the JWT key's expiry
}

func (i *Issuer) newGeneration(ctx context.Context, now time.Time) (*generation, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("issuer: generate signing CA key: %w", err)
	}
	chain, err := i.cfg.MintCA(ctx, caKey, i.cfg.SigningTTL)
	if err != nil {
		return nil, fmt.Errorf("issuer: mint signing CA: %w", err)
	}
	if err := checkCAChain(chain, caKey, now); err != nil {
		return nil, err
	}

	g := &generation{caKey: caKey, chain: chain, expires: chain[0].NotAfter}
	g.rotate = halfway(now, g.expires)
	if err := g.makeJWTKey(); err != nil {
		return nil, err
	}
	if i.cfg.PublishJWTKey != nil {
		if err := i.cfg.PublishJWTKey(ctx, g.jwtKID, g.jwtKey.Public(), g.expires); err != nil {
			return nil, fmt.Errorf("issuer: publish JWT key %s: %w", g.jwtKID, err)
		}
	}
	return g, nil
}

func (g *generation) makeJWTKey() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("issuer: generate JWT key: %w", err)
	}
	jwk := jose.JSONWebKey{Key: key.Public(), Algorithm: string(jose.ES256)}
	thumb, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return fmt.Errorf("issuer: JWT key thumbprint: %w", err)
	}
	kid := base64.RawURLEncoding.EncodeToString(thumb)
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		return fmt.Errorf("issuer: JWT signer: %w", err)
	}
	g.jwtKID, g.jwtKey, g.signer = kid, key, signer
	return nil
}

// checkCAChain makes sure a minted chain can sign SVIDs now: it certifies
// key, is a CA allowed to sign certificates, and is valid at now.
func checkCAChain(chain []*x509.Certificate, key crypto.Signer, now time.Time) error {
	if len(chain) == 0 {
		return errors.New("issuer: minted signing CA chain is empty")
	}
	ca := chain[0]
	pub, ok := ca.PublicKey.(*ecdsa.PublicKey)
	switch {
	case !ok || !pub.Equal(key.Public()):
		return errors.New("issuer: minted signing CA certificate does not certify the signing key")
	case !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0:
		return errors.New("issuer: minted signing CA certificate is not a CA with keyCertSign usage")
	case now.Before(ca.NotBefore) || !now.Before(ca.NotAfter):
		return fmt.Errorf("issuer: minted signing CA is valid from %s to %s, not now (%s)",
			ca.NotBefore.Format(time.RFC3339), ca.NotAfter.Format(time.RFC3339), now.Format(time.RFC3339))
	}
	return nil
}

func halfway(from, to time.Time) time.Time {
	return from.Add(to.Sub(from) / 2)
}
