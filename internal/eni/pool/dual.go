package pool

// Dual stack (Limits.IPv6PerENI > 0, the eni backend's ip_stack "dual"). The pool's unit stays the IPv4 address;
// every allocation is paired with an IPv6 address of the same ENI, recorded in the same checkpoint record
// (Record.IPv6), so the pair is handed out, cooled down, reserved, quarantined and released together. An ENI's
// IPv6 addresses (ENI.IPv6, as the cloud lists them) are free when no record holds them and no UnassignIpv6Addresses
// call has them in flight. Allocate only picks an IPv4 address on an ENI with a free IPv6 address (a pod finding
// none waits, ErrNoIdle, like one finding no IPv4); Plan keeps each usable ENI's free IPv6 addresses level with
// its idle IPv4 ones (Plan.AssignIPv6), a new ENI is created with as many IPv6 addresses as IPv4 (NewENIIPv6), and
// returns the surplus once IPv4 addresses were released (Plan.UnassignIPv6). The pods per ENI are
// min(AddrsPerENI, IPv6PerENI) (Limits.Pods), and Plan grows no ENI's IPv4 addresses beyond that.

import (
	"net/netip"
	"slices"

	"github.com/weftnet/weft/internal/eni/checkpoint"
)

func (p *Pool) dual() bool { return p.cfg.Limits.IPv6PerENI > 0 }

// NewENIIPv6 is how many IPv6 addresses to ask for with a new ENI of secondary IPv4 addresses (its primary
// besides): as many as IPv4 ones, within IPv6PerENI; 0 when IPv4 only.
func (l Limits) NewENIIPv6(secondary int) int {
	if l.IPv6PerENI <= 0 {
		return 0
	}
	return min(secondary+1, l.IPv6PerENI)
}

// free6 returns the free IPv6 addresses of every ENI of the view, lowest first.
func (p *Pool) free6() map[string][]netip.Addr {
	held := map[netip.Addr]bool{}
	for _, rs := range p.recs {
		for _, r := range rs {
			if r.IPv6.IsValid() {
				held[r.IPv6] = true
			}
		}
	}
	out := map[string][]netip.Addr{}
	for id, e := range p.enis {
		for _, a := range e.IPv6 {
			if !held[a] && !p.releasing6[a] {
				out[id] = append(out[id], a)
			}
		}
		slices.SortFunc(out[id], netip.Addr.Compare)
	}
	return out
}

// pair is the IPv6 address a new allocation on the ENI takes (the lowest free one); invalid when not dual.
func (p *Pool) pair(eni string) netip.Addr {
	if !p.dual() {
		return netip.Addr{}
	}
	if f := p.free6()[eni]; len(f) > 0 {
		return f[0]
	}
	return netip.Addr{}
}

// pairable filters pick's candidate ENIs: with dual stack, only those with a free IPv6 address.
func (p *Pool) pairable(count map[string]int) {
	if !p.dual() {
		return
	}
	f := p.free6()
	for id := range count {
		if len(f[id]) == 0 {
			delete(count, id)
		}
	}
}

// ipv6Of is the IPv6 partner of the pod record holding ip.
func (p *Pool) ipv6Of(ip netip.Addr) netip.Addr {
	for _, r := range p.recs[ip] {
		if r.State == checkpoint.Assigned || r.State == checkpoint.Reserved {
			return r.IPv6
		}
	}
	return netip.Addr{}
}

// cleanIPv6 keeps an ENI's IPv6 list to IPv6 addresses no earlier ENI lists (SetENIs' rule for IPv4).
func cleanIPv6(in []netip.Addr, seen map[netip.Addr]bool) []netip.Addr {
	var out []netip.Addr
	for _, a := range in {
		if a.Is6() && !a.Is4In6() && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

// planIPv6 adds the dual-stack part of a plan: per usable ENI, IPv6 addresses to assign so that its free IPv6
// addresses match its idle IPv4 ones (within IPv6PerENI), or the surplus to release (never while degraded).
func (p *Pool) planIPv6(pl *Plan) {
	if !p.dual() {
		return
	}
	idle4 := map[string]int{}
	for _, a := range p.addrs {
		if p.idle(a) {
			idle4[a.eni]++
		}
	}
	f := p.free6()
	ids := make([]string, 0, len(p.enis))
	for id := range p.enis {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		e := p.enis[id]
		if !e.Usable {
			continue
		}
		free := len(f[id])
		if want := min(idle4[id]-free, p.cfg.Limits.IPv6PerENI-len(e.IPv6)); want > 0 {
			for want > 0 {
				k := min(want, maxPerCall)
				pl.AssignIPv6 = append(pl.AssignIPv6, Assign{ENI: id, N: k})
				want -= k
			}
		} else if surplus := free - idle4[id]; surplus > 0 && !p.degraded && len(p.waiting) == 0 {
			drop := slices.Clone(f[id][len(f[id])-surplus:]) // the highest: pair takes the lowest
			pl.UnassignIPv6 = append(pl.UnassignIPv6, Unassign{ENI: id, IPs: drop})
		}
	}
}

// BeginUnassignIPv6 marks free IPv6 addresses of an ENI as releasing before UnassignIpv6Addresses, so no pod is
// paired with them; all or nothing (an address held or not listed on the ENI fails the call: plan again).
func (p *Pool) BeginUnassignIPv6(u Unassign) error {
	p.begin()
	defer p.mu.Unlock()
	f := p.free6()[u.ENI]
	for _, ip := range u.IPs {
		if !slices.Contains(f, ip) {
			return &unassign6Error{eni: u.ENI, ip: ip}
		}
	}
	for _, ip := range u.IPs {
		p.releasing6[ip] = true
	}
	p.notify()
	return nil
}

// UnassignedIPv6 reports UnassignIpv6Addresses' outcome for addresses BeginUnassignIPv6 marked: err nil, they are
// gone from the ENI; otherwise free again.
func (p *Pool) UnassignedIPv6(eni string, ips []netip.Addr, err error) {
	p.begin()
	defer p.mu.Unlock()
	gone := map[netip.Addr]bool{}
	for _, ip := range ips {
		if !p.releasing6[ip] {
			continue
		}
		delete(p.releasing6, ip)
		gone[ip] = err == nil
	}
	if e := p.enis[eni]; e != nil && err == nil {
		e.IPv6 = slices.DeleteFunc(slices.Clone(e.IPv6), func(ip netip.Addr) bool { return gone[ip] })
	}
	p.notify()
}

// AssignedIPv6 tells the pool that the cloud now lists ips, IPv6 addresses, on the ENI (after
// AssignIpv6Addresses, or CreateNetworkInterface with Ipv6AddressCount): they are free from now.
func (p *Pool) AssignedIPv6(eni string, ips []netip.Addr) {
	p.begin()
	defer p.mu.Unlock()
	e := p.enis[eni]
	if e == nil {
		return // Assigned (the IPv4 addresses) comes first for a new ENI
	}
	seen := map[netip.Addr]bool{}
	for _, x := range p.enis {
		for _, a := range x.IPv6 {
			seen[a] = true
		}
	}
	e.IPv6 = append(e.IPv6, cleanIPv6(ips, seen)...)
	p.notify()
}

type unassign6Error struct {
	eni string
	ip  netip.Addr
}

func (e *unassign6Error) Error() string {
	return "unassign IPv6 on " + e.eni + ": " + e.ip.String() + " is not a free IPv6 address of it"
}
