package txntoken

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const (
	gateway = "spiffe://example.org/agentauth/gateway"
	toolsA  = "spiffe://example.org/tools/a"
	toolsB  = "spiffe://example.org/tools/b"
)

func sampleClaims() Claims {
	return Claims{
		Subject: "alice", SponsorIssuer: "https://idp.example.org",
		Audience: toolsA, RunID: "01J0RUN", Txn: "txn-1",
		Actor:           NewActor([]string{"spiffe://example.org/agents/r/runs/01J0RUN"}),
		Scope:           Scope{Server: "a", Tool: "read", Grant: "g1"},
		ArgumentsDigest: ArgumentsDigest([]byte(`{"path":"/x"}`)),
	}
}

func mustIssuer(t *testing.T) *Issuer {
	t.Helper()
	iss, err := NewIssuer(gateway, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

func TestIssueVerifyRoundTrip(t *testing.T) {
	iss := mustIssuer(t)
	tok, issued, err := iss.Issue(sampleClaims())
	if err != nil {
		t.Fatal(err)
	}
	got, err := iss.Verifier().Verify(tok, toolsA)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if got.Txn != "txn-1" || got.RunID != "01J0RUN" || got.Scope.Tool != "read" {
		t.Errorf("claims = %+v", got)
	}
	if got.Issuer != gateway || got.ID != issued.ID || !got.Expiry.After(got.IssuedAt) {
		t.Errorf("registered claims = iss %q jti %q exp %v", got.Issuer, got.ID, got.Expiry)
	}
	if chain := got.Actor.Chain(); len(chain) != 1 || !strings.Contains(chain[0], "/runs/") {
		t.Errorf("act chain = %v", chain)
	}
}

func TestNestedActors(t *testing.T) {
	act := NewActor([]string{"parent", "child", "tool"})
	if got := act.Chain(); strings.Join(got, ",") != "tool,child,parent" {
		t.Errorf("Chain() = %v, want latest actor first", got)
	}
}

func TestVerifyRejects(t *testing.T) {
	iss := mustIssuer(t)
	forger := mustIssuer(t)
	good, _, _ := iss.Issue(sampleClaims())
	forged, _, _ := forger.Issue(sampleClaims())

	expIss := mustIssuer(t)
	expIss.now = func() time.Time { return time.Now().Add(-2 * time.Minute) }
	expired, _, _ := expIss.Issue(sampleClaims())

	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + parts[1] + "x." + parts[2]

	cases := []struct {
		name      string
		v         *Verifier
		token     string
		presenter string
		want      error
	}{
		{"forged by another key", iss.Verifier(), forged, toolsA, ErrSignature},
		{"expired", expIss.Verifier(), expired, toolsA, ErrExpired},
		{"replayed to another server", iss.Verifier(), good, toolsB, ErrAudience},
		{"no presenter", iss.Verifier(), good, "", ErrAudience},
		{"tampered payload", iss.Verifier(), tampered, toolsA, ErrMalformed},
		{"empty", iss.Verifier(), "", toolsA, ErrMalformed},
		{"garbage", iss.Verifier(), "a.b.c", toolsA, ErrMalformed},
		{"oversized", iss.Verifier(), strings.Repeat("a", 9000), toolsA, ErrMalformed},
		{"alg none", iss.Verifier(), "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", toolsA, ErrMalformed},
		{"other issuer name", NewVerifier("spiffe://other/gw", iss.key.Public()), good, toolsA, ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.v.Verify(tc.token, tc.presenter)
			if !errors.Is(err, tc.want) && !(tc.want == ErrMalformed && errors.Is(err, ErrSignature)) {
				t.Fatalf("Verify err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestIssueRequiresBinding(t *testing.T) {
	c := sampleClaims()
	c.Audience = ""
	if _, _, err := mustIssuer(t).Issue(c); err == nil {
		t.Fatal("Issue without audience succeeded")
	}
	if _, err := NewIssuer("https://not-spiffe", 0); err == nil {
		t.Fatal("NewIssuer with a non-SPIFFE issuer succeeded")
	}
}

func FuzzVerify(f *testing.F) {
	iss, err := NewIssuer(gateway, time.Minute)
	if err != nil {
		f.Fatal(err)
	}
	good, _, _ := iss.Issue(sampleClaims())
	f.Add(good)
	f.Add("")
	f.Add("e30.e30.")
	v := iss.Verifier()
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := v.Verify(tok, toolsA)
		if err == nil && tok != good {
			t.Fatalf("accepted a token that was not issued: %+v", c)
		}
	})
}
