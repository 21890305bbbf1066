package pool

import (
	"iter"
	"maps"
	"net/netip"
)

// waitingKeys and isIdle let the simulation look inside.
func (p *Pool) waitingKeys() iter.Seq[podKey] {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Keys(maps.Clone(p.waiting))
}

func (p *Pool) isIdle(ip netip.Addr) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	a := p.addrs[ip]
	return a != nil && p.idle(a)
}
