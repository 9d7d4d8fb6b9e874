package runs_test

import (
	"context"
	"testing"
	"time"

	"github.com/agentauth/agentauth/agentauth/runs"
)

// BenchmarkStartRun measures StartRun with the SQLite store in a
// temporary folder: entitlement checks, ULID, the durable insert and the
// in-memory index.
func BenchmarkStartRun(b *testing.B) {
	e := newEnvTB(b)
	ctx := context.Background()
	req := runs.StartRequest{Sponsor: alice, Agent: "lead", Grants: []string{"read", "write"},
		Purpose: "benchmark", TTL: 30 * time.Minute}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := e.m.StartRun(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
