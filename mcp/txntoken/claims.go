package txntoken

import (
	"crypto/sha256"
	"encoding/base64"
	"time"
)

// Actor is one `act` claim: an identity that acts for the subject, with
// the actor before it nested inside.
type Actor struct {
	Subject string `json:"sub"`
	Actor   *Actor `json:"act,omitempty"`
}

// Chain returns the actors from the outermost (latest) to the innermost.
func (a *Actor) Chain() []string {
	var ids []string
	for cur := a; cur != nil; cur = cur.Actor {
		ids = append(ids, cur.Subject)
	}
	return ids
}

// NewActor builds nested act claims from a chain listed first hop first,
// so the last element becomes the outermost actor.
func NewActor(chain []string) *Actor {
	var act *Actor
	for _, id := range chain {
		act = &Actor{Subject: id, Actor: act}
	}
	return act
}

// Scope is the narrowed authority one token carries.
type Scope struct {
	Server string `json:"server"`
	Tool   string `json:"tool"`
	Grant  string `json:"grant,omitempty"`
}

// Claims is the content of a transaction token.
type Claims struct {
	// Sponsor is the human behind the chain: SponsorIssuer + Subject.
	Subject       string `json:"sub"`
	SponsorIssuer string `json:"sponsor_iss,omitempty"`
	// Audience is the SPIFFE ID of the tool server receiving the call.
	Audience string `json:"aud"`
	// RunID is the run the call acts for.
	RunID string `json:"run_id"`
	// Txn identifies the transaction; chained calls keep it.
	Txn string `json:"txn"`
	// Actor is the delegation chain, latest actor outermost.
	Actor *Actor `json:"act,omitempty"`
	Scope Scope  `json:"scope"`
	// ArgumentsDigest is ArgumentsDigest of the call's exact argument bytes.
	ArgumentsDigest string `json:"args_sha256"`
	// Issuer, IssuedAt, Expiry and ID are set by Issue.
	Issuer   string    `json:"-"`
	IssuedAt time.Time `json:"-"`
	Expiry   time.Time `json:"-"`
	ID       string    `json:"-"`
}

// ArgumentsDigest returns the base64url SHA-256 of raw argument bytes.
func ArgumentsDigest(raw []byte) string {
	sum := sha256.Sum256(raw)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
