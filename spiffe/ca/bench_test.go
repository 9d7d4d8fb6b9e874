package ca_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/agentauth/agentauth/spiffe/ca"
	"github.com/agentauth/agentauth/spiffe/identity"
	"github.com/agentauth/agentauth/spiffe/internal/spiffetest"
)

// BenchmarkSignRunCSR measures run X.509-SVID issuance as the gateway does
// it: CSR parsing and checks (signature included) and signing. It reports
// the median and 99th percentile of single calls next to the mean.
func BenchmarkSignRunCSR(b *testing.B) {
	c, err := openBench(b)
	if err != nil {
		b.Fatal(err)
	}
	id, err := identity.RunID(td, "researcher", identity.NewRunID())
	if err != nil {
		b.Fatal(err)
	}
	csr := spiffetest.NewCSR(b, spiffetest.NewKey(b), id.URL())
	ctx, runEnd := context.Background(), time.Now().Add(time.Hour)

	samples := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		if _, err := c.SignRunCSR(ctx, csr, id, runEnd); err != nil {
			b.Fatal(err)
		}
		samples = append(samples, time.Since(t0))
	}
	reportPercentiles(b, samples)
}

func BenchmarkMintJWTSVID(b *testing.B) {
	c, err := openBench(b)
	if err != nil {
		b.Fatal(err)
	}
	id, _ := identity.RunID(td, "researcher", identity.NewRunID())
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.MintJWTSVID(ctx, id, "spiffe://example.org/tools/github", 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidateJWTSVID(b *testing.B) {
	c, err := openBench(b)
	if err != nil {
		b.Fatal(err)
	}
	id, _ := identity.RunID(td, "researcher", identity.NewRunID())
	token, err := c.MintJWTSVID(context.Background(), id, "spiffe://example.org/tools/github", 0)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := identity.ValidateJWTSVID(token, c, "spiffe://example.org/tools/github"); err != nil {
			b.Fatal(err)
		}
	}
}

func openBench(b *testing.B) (*ca.CA, error) {
	c, err := ca.Open(context.Background(), config(b.TempDir(), nil))
	if err == nil {
		b.Cleanup(func() { c.Close() })
	}
	return c, err
}

// reportPercentiles adds the median and 99th percentile of samples to the
// benchmark's output as p50-ns and p99-ns.
func reportPercentiles(b *testing.B, samples []time.Duration) {
	if len(samples) == 0 {
		return
	}
	slices.Sort(samples)
	b.ReportMetric(float64(samples[len(samples)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(samples[len(samples)*99/100].Nanoseconds()), "p99-ns")
}
