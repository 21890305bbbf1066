package pool

import (
	"cmp"
	"net/netip"
	"slices"
	"time"

	"github.com/weftnet/weft/internal/eni/checkpoint"
)

// Plan says what the pool wants from the cloud now (see the package comment for how to carry it out).
//
// Growth: when idle falls below MinIdle or a pod waits, it asks for waiting + TargetIdle - idle addresses, less
// those coming on ENIs not yet Usable, and never beyond Limits.Pods() addresses on the node's ENIs: room on the
// usable ENIs first (the fullest first, in calls of at most 10), then one new ENI while the node has fewer than
// Limits.ENIs and none is still being set up. Shrinking: when no pod waits, the pool is not degraded and idle
// exceeds MaxIdle, it releases down to TargetIdle the idle addresses whose jittered IdleReclaimAfter has passed,
// at most ReclaimBatch, the emptiest ENIs' first, grouped per ENI; never an ENI's primary, a cooling down,
// quarantined or releasing address.
func (p *Pool) Plan() Plan {
	now := p.begin()
	defer p.mu.Unlock()
	var pl Plan
	idle, coming := 0, 0
	held := map[string]int{} // addresses of an ENI that are not idle
	var idles []*addr
	for _, a := range p.addrs {
		e := p.enis[a.eni]
		switch {
		case !p.isDefault(e): // class.go: not part of the warm pool
			held[a.eni]++
		case p.idle(a):
			idle++
			idles = append(idles, a)
		case e != nil && !e.Usable && !a.releasing && len(p.recs[a.ip]) == 0:
			coming++
			held[a.eni]++
		default:
			held[a.eni]++
		}
	}
	waiting := len(p.waiting) - p.ownWaiting() // the pods waiting for the default class (class.go)

	if idle < p.cfg.MinIdle || waiting > 0 {
		need := min(waiting+p.cfg.TargetIdle-idle-coming, p.cfg.Limits.Pods()-len(p.addrs))
		pl.Assign, need = p.assigns(need)
		if need > 0 && len(p.enis) < p.cfg.Limits.ENIs && p.cfg.Limits.AddrsPerENI >= 2 && !p.settingUp() {
			pl.CreateENI = min(max(need-1, 1), maxPerCall-1, p.cfg.Limits.perENI()-1)
			// Dual stack with one IPv6 address per ENI: an ENI carries one pod, on its primary (dual.go).
			pl.CreateWhole = pl.CreateENI == 0
		}
		if need > 0 && len(p.enis) < p.cfg.Limits.ENIs && p.cfg.Limits.Exclusive && !p.settingUp() {
			pl.CreateWhole = true // exclusive: an ENI is one pod's address, its primary
		}
	}

	var next time.Time
	later := func(t time.Time) {
		if t.After(now) && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, rs := range p.recs {
		for _, r := range rs {
			switch r.State {
			case checkpoint.Cooldown:
				later(r.ReleasedAt.Add(p.cfg.Cooldown))
			case checkpoint.Reserved:
				later(r.ReservedUntil)
			}
		}
	}
	if !p.degraded && waiting == 0 && idle > p.cfg.MaxIdle {
		var ripe []*addr
		for _, a := range idles {
			if e := p.enis[a.eni]; e.Addrs[0] == a.ip {
				continue // an ENI's primary address cannot be unassigned
			}
			if now.Before(a.due()) {
				later(a.due())
			} else {
				ripe = append(ripe, a)
			}
		}
		slices.SortFunc(ripe, func(x, y *addr) int {
			return cmp.Or(cmp.Compare(held[x.eni], held[y.eni]), cmp.Compare(x.eni, y.eni), x.since.Compare(y.since), x.ip.Compare(y.ip))
		})
		ripe = ripe[:min(len(ripe), idle-p.cfg.TargetIdle, p.cfg.ReclaimBatch)]
		byENI := map[string]int{}
		for _, a := range ripe {
			i, ok := byENI[a.eni]
			if !ok {
				i = len(pl.Unassign)
				byENI[a.eni] = i
				pl.Unassign = append(pl.Unassign, Unassign{ENI: a.eni})
			}
			pl.Unassign[i].IPs = append(pl.Unassign[i].IPs, a.ip)
		}
		for _, u := range pl.Unassign {
			slices.SortFunc(u.IPs, netip.Addr.Compare)
		}
	}
	p.classPlan(&pl, p.cfg.Limits.Pods()-len(p.addrs)-assigned(pl.Assign)) // class.go
	p.classReclaim(&pl, later)
	p.planIPv6(&pl) // dual.go
	pl.NextCheck = next
	return pl
}

// assigns spends up to need addresses of room on the usable ENIs, the fullest first (packing, as Allocate does),
// and returns what is left of need.
func (p *Pool) assigns(need int) ([]Assign, int) {
	if need <= 0 {
		return nil, 0
	}
	var room []*ENI
	for _, e := range p.enis {
		if e.Usable && len(e.Addrs) < p.cfg.Limits.perENI() && p.isDefault(e) {
			room = append(room, e)
		}
	}
	slices.SortFunc(room, func(x, y *ENI) int { return cmp.Or(cmp.Compare(len(y.Addrs), len(x.Addrs)), cmp.Compare(x.ID, y.ID)) })
	var out []Assign
	for _, e := range room {
		for n := min(p.cfg.Limits.perENI()-len(e.Addrs), need); n > 0 && need > 0; {
			k := min(n, maxPerCall)
			out = append(out, Assign{ENI: e.ID, N: k})
			n, need = n-k, need-k
		}
	}
	return out, need
}

// settingUp reports whether an ENI the pool knows of is not Usable yet: then no other is created, which is how a
// CreateENI the caller is still carrying out (or whose ENI it is still setting up) is not asked for twice.
func (p *Pool) settingUp() bool {
	for _, e := range p.enis {
		if !e.Usable {
			return true
		}
	}
	return false
}
