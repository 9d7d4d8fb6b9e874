package authz_test

import (
	"runtime"
	"testing"
)

// TestHeapOf10kGrants keeps the memory of a large compiled policy bounded.
func TestHeapOf10kGrants(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 10,000 grants")
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	p := mustParse(t, benchPolicy(10_000))
	runtime.GC()
	runtime.ReadMemStats(&after)
	mib := (after.HeapAlloc - before.HeapAlloc) >> 20
	t.Logf("10,000 grants: %d MiB live heap", mib)
	if mib > 100 {
		t.Errorf("10,000 compiled grants take %d MiB, over the 100 MiB budget", mib)
	}
	runtime.KeepAlive(p)
}
