package authz

import (
	"runtime"
	"sync"
	"weak"

	"github.com/agentauth/agentauth/agentauth/runs"
)

// chainCache keeps each live run's chain as []Hop so a decision does not
// convert it again. An entry goes away when its run is dropped from
// memory and collected.
type chainCache struct {
	m sync.Map // weak.Pointer[runs.Live] -> []Hop
}

// get returns the run's chain, plus a tool server hop when via is set.
// Callers must not modify the returned slice.
func (c *chainCache) get(live *runs.Live, via string) []Hop {
	key := weak.Make(live)
	hops, ok := c.m.Load(key)
	if !ok {
		hops = convertChain(live)
		if _, loaded := c.m.LoadOrStore(key, hops); !loaded {
			runtime.AddCleanup(live, func(k weak.Pointer[runs.Live]) { c.m.Delete(k) }, key)
		}
	}
	out := hops.([]Hop)
	if via == "" {
		return out
	}
	return append(out[:len(out):len(out)], Hop{SPIFFEID: via})
}

func convertChain(live *runs.Live) []Hop {
	src := live.Chain()
	out := make([]Hop, len(src))
	for i, h := range src {
		out[i] = Hop{RunID: h.RunID, Agent: h.Agent, SPIFFEID: h.SPIFFEID}
	}
	return out
}
