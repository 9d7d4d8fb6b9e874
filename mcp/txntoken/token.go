package txntoken

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// MetaKey is the params._meta key that carries the token to a tool server.
const MetaKey = "io.agentauth/txn-token"

// Header is the HTTP header that carries the token, both to HTTP tool
// servers and back from a tool server making a chained call.
const Header = "Txn-Token"

// DefaultTTL is the lifetime of a token unless the issuer is told otherwise.
const DefaultTTL = 30 * time.Second

// maxTokenBytes bounds the size of a token accepted for verification.
const maxTokenBytes = 8 << 10

// Errors Verify wraps, so callers can tell the cases apart.
var (
	ErrMalformed = errors.New("txntoken: malformed token")
	ErrSignature = errors.New("txntoken: signature does not verify")
	ErrExpired   = errors.New("txntoken: token expired")
	ErrAudience  = errors.New("txntoken: token audience is not the presenter")
)

// Issuer signs transaction tokens with the gateway's token key.
type Issuer struct {
	id     string
	key    *ecdsa.PrivateKey
	keyID  string
	signer jose.Signer
	ttl    time.Duration
	now    func() time.Time
}

// NewIssuer returns an issuer named by the gateway's SPIFFE ID that signs
// with a fresh P-256 key held only in memory. A ttl of zero means
// DefaultTTL.
func NewIssuer(gatewayID string, ttl time.Duration) (*Issuer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("txntoken: generate key: %w", err)
	}
	kid := make([]byte, 8)
	if _, err := rand.Read(kid); err != nil {
		return nil, fmt.Errorf("txntoken: key id: %w", err)
	}
	return newIssuer(gatewayID, key, hex.EncodeToString(kid), ttl)
}

func newIssuer(id string, key *ecdsa.PrivateKey, kid string, ttl time.Duration) (*Issuer, error) {
	if !strings.HasPrefix(id, "spiffe://") {
		return nil, fmt.Errorf("txntoken: issuer %q is not a SPIFFE ID", id)
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	opts := (&jose.SignerOptions{}).WithType("txntoken+jwt").WithHeader("kid", kid)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, opts)
	if err != nil {
		return nil, fmt.Errorf("txntoken: signer: %w", err)
	}
	return &Issuer{id: id, key: key, keyID: kid, signer: signer, ttl: ttl, now: time.Now}, nil
}

// ID returns the issuer's SPIFFE ID.
func (i *Issuer) ID() string { return i.id }

// PublicKey returns the JWK that verifies this issuer's tokens, for tool
// servers that want to read tokens themselves.
func (i *Issuer) PublicKey() jose.JSONWebKey {
	return jose.JSONWebKey{Key: i.key.Public(), KeyID: i.keyID, Algorithm: string(jose.ES256), Use: "sig"}
}

// Verifier returns a verifier for this issuer's tokens.
func (i *Issuer) Verifier() *Verifier {
	return &Verifier{issuer: i.id, key: i.key.Public(), now: time.Now}
}

type registered struct {
	Issuer   string           `json:"iss"`
	IssuedAt *jwt.NumericDate `json:"iat"`
	Expiry   *jwt.NumericDate `json:"exp"`
	ID       string           `json:"jti"`
}

// payload is the whole claim set, encoded in one pass.
type payload struct {
	registered
	Claims
}

// Issue signs c, setting its issuer, issue time, expiry and token id, and
// returns the compact token with the claims as issued.
func (i *Issuer) Issue(c Claims) (string, Claims, error) {
	if c.Audience == "" || c.Txn == "" || c.RunID == "" {
		return "", Claims{}, errors.New("txntoken: audience, txn and run_id are required")
	}
	now := i.now()
	c.Issuer, c.IssuedAt, c.Expiry, c.ID = i.id, now, now.Add(i.ttl), randomID()
	reg := registered{
		Issuer: c.Issuer, IssuedAt: jwt.NewNumericDate(now),
		Expiry: jwt.NewNumericDate(c.Expiry), ID: c.ID,
	}
	body, err := json.Marshal(payload{reg, c})
	if err != nil {
		return "", Claims{}, fmt.Errorf("txntoken: encode claims: %w", err)
	}
	jws, err := i.signer.Sign(body)
	if err != nil {
		return "", Claims{}, fmt.Errorf("txntoken: sign: %w", err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		return "", Claims{}, fmt.Errorf("txntoken: serialize: %w", err)
	}
	return tok, c, nil
}

// Verifier checks tokens signed by one issuer.
type Verifier struct {
	issuer string
	key    crypto.PublicKey
	now    func() time.Time
}

// NewVerifier returns a verifier for tokens from issuer signed by key.
func NewVerifier(issuer string, key crypto.PublicKey) *Verifier {
	return &Verifier{issuer: issuer, key: key, now: time.Now}
}

// Verify checks the token's signature, issuer, expiry and that its audience
// is presenter, the SPIFFE ID of whoever presents it. It returns the claims.
func (v *Verifier) Verify(token, presenter string) (Claims, error) {
	if len(token) == 0 || len(token) > maxTokenBytes {
		return Claims{}, fmt.Errorf("%w: length %d", ErrMalformed, len(token))
	}
	parsed, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var reg registered
	var c Claims
	if err := parsed.Claims(v.key, &reg, &c); err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrSignature, err)
	}
	if reg.Issuer != v.issuer || reg.Expiry == nil || reg.IssuedAt == nil {
		return Claims{}, fmt.Errorf("%w: issuer %q or times missing", ErrMalformed, reg.Issuer)
	}
	if !v.now().Before(reg.Expiry.Time()) {
		return Claims{}, fmt.Errorf("%w at %s", ErrExpired, reg.Expiry.Time().UTC().Format(time.RFC3339))
	}
	if presenter == "" || c.Audience != presenter {
		return Claims{}, fmt.Errorf("%w: audience %q, presenter %q", ErrAudience, c.Audience, presenter)
	}
	c.Issuer, c.IssuedAt, c.Expiry, c.ID = reg.Issuer, reg.IssuedAt.Time(), reg.Expiry.Time(), reg.ID
	return c, nil
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
