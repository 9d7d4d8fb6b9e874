package txntoken

import (
	"testing"
	"time"
)

func BenchmarkIssue(b *testing.B) {
	iss, err := NewIssuer(gateway, time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	c := sampleClaims()
	for b.Loop() {
		if _, _, err := iss.Issue(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	iss, _ := NewIssuer(gateway, time.Minute)
	tok, _, _ := iss.Issue(sampleClaims())
	v := iss.Verifier()
	for b.Loop() {
		if _, err := v.Verify(tok, toolsA); err != nil {
			b.Fatal(err)
		}
	}
}
