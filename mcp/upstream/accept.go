package upstream

import (
	"context"
	"time"
)

// watchPins polls the pin table for tools that an operator accepted from
// another process (`agentauth tools accept`), so that the catalog, not only
// CallTool, shows them accepted within Options.PinPoll.
func (s *Set) watchPins() {
	tick := time.NewTicker(s.opts.PinPoll)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		}
		for _, name := range s.order {
			s.conns[name].recheckChanged(s.ctx)
		}
	}
}

// recheckChanged marks accepted every changed tool whose listed definition
// is now the accepted one in the pin table.
func (c *conn) recheckChanged(ctx context.Context) {
	accepted := 0
	for _, t := range c.changedTools() {
		pin, err := c.set.pins.Status(ctx, c.cfg.Name, t.Upstream)
		if err != nil {
			if ctx.Err() == nil {
				c.log.Error("upstream pin check failed", "tool", t.Upstream, "err", err)
			}
			continue
		}
		if pin.Status == StatusAccepted && pin.Digest == t.Digest {
			c.setStatus(t.Upstream, StatusAccepted)
			c.log.Info("upstream tool definition accepted by an operator", "tool", t.Upstream, "digest", t.Digest)
			accepted++
		}
	}
	if accepted > 0 {
		c.set.changed(Change{Server: c.cfg.Name, Kind: "tools"})
	}
}

func (c *conn) changedTools() []Tool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var changed []Tool
	for _, t := range c.catalog.tools {
		if t.Status == StatusChanged {
			changed = append(changed, t)
		}
	}
	return changed
}
