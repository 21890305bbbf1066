package pool

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/weftnet/weft/internal/eni/checkpoint"
)

// SetENIs replaces the pool's view with the observed ENIs (the cloud's list, Usable from the host): only the
// node's secondary ENIs, each address primary first, read after the last cloud call the caller made completed.
// Addresses that appear are idle from now; idle ones that vanished simply go, releasing ones that vanished are
// released. An Assigned address no longer listed on its ENI becomes Quarantined, the reason saying what the cloud
// lists instead, and is reported once by Lost; the change reaches the checkpoint with the next save (a restart's
// reconcile would find the same). Cooldown and quarantined records stay whatever the view says: a cooldown ends
// only with its time, so an address that leaves and comes back is still not handed out too soon.
//
// Bad input is dropped, not trusted: an ENI without an id or listed twice (the first counts), an address that is
// not IPv4 or that an earlier ENI already lists.
func (p *Pool) SetENIs(enis []ENI) {
	now := p.begin()
	defer p.mu.Unlock()
	view := map[string]*ENI{}
	addrs := map[netip.Addr]*addr{}
	seen6 := map[netip.Addr]bool{}
	for _, in := range enis {
		if in.ID == "" || view[in.ID] != nil {
			continue
		}
		e := in
		e.Addrs = nil
		e.IPv6 = cleanIPv6(in.IPv6, seen6) // dual.go
		for _, ip := range in.Addrs {
			if !ip.Is4() || addrs[ip] != nil {
				continue
			}
			e.Addrs = append(e.Addrs, ip)
			a := &addr{ip: ip, eni: e.ID}
			if old := p.addrs[ip]; old != nil {
				a.since, a.wait = old.since, old.wait
				a.releasing = old.releasing && old.eni == e.ID
			} else {
				p.free(a, now)
			}
			addrs[ip] = a
		}
		view[e.ID] = &e
	}
	changed := !sameView(p.enis, view)
	p.enis, p.addrs = view, addrs
	for ip, rs := range p.recs {
		for _, r := range rs {
			if r.State != checkpoint.Assigned {
				continue
			}
			a := addrs[ip]
			if a != nil && a.eni == r.ENI {
				continue
			}
			r.State = checkpoint.Quarantined
			if a == nil {
				r.Reason = fmt.Sprintf("the cloud no longer lists %s on %s (it was assigned to pod %s/%s)", ip, r.ENI, r.PodNamespace, r.PodName)
			} else {
				r.Reason = fmt.Sprintf("the cloud lists %s on %s, not on %s (it was assigned to pod %s/%s)", ip, a.eni, r.ENI, r.PodNamespace, r.PodName)
			}
			p.lost = append(p.lost, *r)
			changed = true
			p.unsaved = true
		}
	}
	if changed {
		p.notify()
	}
}

func sameView(a, b map[string]*ENI) bool {
	if len(a) != len(b) {
		return false
	}
	for id, x := range a {
		y := b[id]
		if y == nil || x.MAC != y.MAC || x.VSwitchID != y.VSwitchID || x.Usable != y.Usable || !slices.Equal(x.Addrs, y.Addrs) || !slices.Equal(x.IPv6, y.IPv6) {
			return false
		}
	}
	return true
}

// Assigned tells the pool that the cloud now lists ips on the ENI (after AssignPrivateIpAddresses, or after
// CreateNetworkInterface with all the new ENI's addresses, primary first): they are idle from now. An ENI the pool
// does not know yet is added, not Usable, until SetENIs reports it set up; until then Plan asks for no other ENI.
// An address not IPv4 or listed on another ENI is ignored.
func (p *Pool) Assigned(eni string, ips []netip.Addr) {
	now := p.begin()
	defer p.mu.Unlock()
	if eni == "" {
		return
	}
	e := p.enis[eni]
	if e == nil {
		e = &ENI{ID: eni}
		p.enis[eni] = e
	}
	for _, ip := range ips {
		if !ip.Is4() || p.addrs[ip] != nil {
			continue
		}
		e.Addrs = append(e.Addrs, ip)
		a := &addr{ip: ip, eni: eni}
		p.free(a, now)
		p.addrs[ip] = a
	}
	p.notify()
}

// BeginUnassign marks the addresses of an Unassign releasing, so Allocate no longer hands them out, before the
// caller calls UnassignPrivateIpAddresses. All or nothing: an address not idle on that ENI any more (a pod took it
// since the plan) or the ENI's primary fails the whole call, and the caller plans again.
func (p *Pool) BeginUnassign(u Unassign) error {
	p.begin()
	defer p.mu.Unlock()
	e := p.enis[u.ENI]
	if e == nil {
		return fmt.Errorf("unassign on %q: no such ENI in the pool's view", u.ENI)
	}
	if len(u.IPs) == 0 {
		return fmt.Errorf("unassign on %s: no addresses", u.ENI)
	}
	seen := map[netip.Addr]bool{}
	for _, ip := range u.IPs {
		a := p.addrs[ip]
		switch {
		case seen[ip]:
			return fmt.Errorf("unassign on %s: %s listed twice", u.ENI, ip)
		case a == nil || a.eni != u.ENI:
			return fmt.Errorf("unassign on %s: %s is not listed on it", u.ENI, ip)
		case len(e.Addrs) > 0 && e.Addrs[0] == ip:
			return fmt.Errorf("unassign on %s: %s is its primary address, which cannot be unassigned", u.ENI, ip)
		case !p.idle(a):
			return fmt.Errorf("unassign on %s: %s is no longer idle", u.ENI, ip)
		}
		seen[ip] = true
	}
	for _, ip := range u.IPs {
		p.addrs[ip].releasing = true
	}
	p.notify()
	return nil
}

// Unassigned reports the outcome of UnassignPrivateIpAddresses for addresses BeginUnassign marked: err nil, they
// are gone from the ENI; otherwise they are idle again from now (their reclaim wait starts over, which spaces out
// retries).
func (p *Pool) Unassigned(eni string, ips []netip.Addr, err error) {
	now := p.begin()
	defer p.mu.Unlock()
	gone := map[netip.Addr]bool{}
	for _, ip := range ips {
		a := p.addrs[ip]
		if a == nil || a.eni != eni || !a.releasing {
			continue
		}
		a.releasing = false
		if err == nil {
			delete(p.addrs, ip)
			gone[ip] = true
		} else {
			p.free(a, now)
		}
	}
	if e := p.enis[eni]; e != nil && len(gone) > 0 {
		e.Addrs = slices.DeleteFunc(slices.Clone(e.Addrs), func(ip netip.Addr) bool { return gone[ip] })
	}
	p.notify()
}

// due is when an idle address may be released.
func (a *addr) due() time.Time { return a.since.Add(a.wait) }
