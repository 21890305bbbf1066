package pool

// Allocation and release: handing a pod an idle address within the node's limit (Allocate, pick), a waiting pod
// giving up (Abandon), and a pod's release into cooldown (Release), each saved before it returns.

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/weftnet/weft/internal/eni/checkpoint"
)

// inUse counts the addresses held by pods and the quarantined and reserved ones that still take a slot on a listed
// ENI.
func (p *Pool) inUse() int {
	n := 0
	for ip, rs := range p.recs {
		assigned, kept := false, false
		for _, r := range rs {
			assigned = assigned || r.State == checkpoint.Assigned
			kept = kept || r.State == checkpoint.Quarantined || r.State == checkpoint.Reserved
		}
		if assigned || kept && p.addrs[ip] != nil {
			n++
		}
	}
	return n
}

func (p *Pool) allocation(ip netip.Addr, eni string) Allocation {
	e := ENI{ID: eni}
	if v := p.enis[eni]; v != nil {
		e = *v
		e.Addrs = slices.Clone(v.Addrs)
	}
	return Allocation{IP: ip, ENI: e, IPv6: p.ipv6Of(ip)}
}

// Allocate hands the pod an idle address and saves the checkpoint before returning. The same ContainerID and
// IfName again get the same allocation (an ADD retry). At the limit: *LimitError. Nothing idle: ErrNoIdle, and the
// pod counts as waiting until it gets an address, is released or abandoned.
func (p *Pool) Allocate(pod Pod) (Allocation, error) {
	now := p.begin()
	defer p.mu.Unlock()
	if pod.ContainerID == "" || pod.IfName == "" {
		return Allocation{}, fmt.Errorf("allocate: containerID %q and ifName %q, want both set", pod.ContainerID, pod.IfName)
	}
	k := podKey{pod.ContainerID, pod.IfName}
	if r := p.pods[k]; r != nil {
		if r.State == checkpoint.Quarantined {
			return Allocation{}, fmt.Errorf("allocate: %s/%s holds %s, which is quarantined (%s): release it first", pod.ContainerID, pod.IfName, r.IP, r.Reason)
		}
		return p.allocation(r.IP, r.ENI), nil
	}
	if a, done, err := p.takeReserved(pod, now); done {
		return a, err // the pod's own reserved address (it counts in inUse already), or the wait for its ENI
	}
	n := p.inUse()
	if n >= p.cfg.Limits.Pods() {
		if p.waiting[k] {
			delete(p.waiting, k)
			p.notify()
		}
		return Allocation{}, &LimitError{Limits: p.cfg.Limits, InUse: n}
	}
	cls := p.classOf(pod)
	a := p.pick(cls)
	if a == nil && !p.roomFor(cls) { // class.go: no ENI of the pod's class can take it, no ENI slot left
		if p.waiting[k] {
			delete(p.waiting, k)
			p.notify()
		}
		return Allocation{}, &LimitError{Limits: p.cfg.Limits, InUse: n, Class: cls.String()}
	}
	if a == nil {
		if !p.waiting[k] {
			p.waiting[k] = true
			p.notify()
		}
		if p.ownClass(cls) {
			p.waitClass[k] = cls
		}
		return Allocation{}, ErrNoIdle
	}
	r := &checkpoint.Record{ContainerID: pod.ContainerID, Netns: pod.Netns, IfName: pod.IfName, PodNamespace: pod.Namespace,
		PodName: pod.Name, IP: a.ip, ENI: a.eni, State: checkpoint.Assigned, AssignedAt: now, IPv6: p.pair(a.eni)}
	if pod.Reserve && p.cfg.ReserveTTL > 0 {
		r.Reserve, r.StatefulSet = true, pod.StatefulSet
	}
	was, wasWaiting := *a, p.waiting[k]
	p.addRec(r)
	delete(p.waiting, k)
	wasClass, hadClass := p.waitClass[k]
	delete(p.waitClass, k)
	if err := p.save(); err != nil {
		if hadClass {
			p.waitClass[k] = wasClass
		}
		p.delRec(r, now)
		*a = was // it never left the idle set: keep its idle time and jitter
		if wasWaiting {
			p.waiting[k] = true
		}
		return Allocation{}, fmt.Errorf("allocate %s/%s: %w", pod.ContainerID, pod.IfName, err)
	}
	p.notify()
	return p.allocation(a.ip, a.eni), nil
}

// pick chooses the address Allocate hands out. It packs: the usable ENI with the fewest idle addresses first (ties:
// the lower ENI id), so pods gather on few ENIs and the idle addresses of the others stay together, to be
// released in one call and, once all are gone, to let the ENI be given back. Within the ENI its primary address
// first, since it can never be unassigned and so would otherwise sit idle for ever; then the address idle longest
// (ties: the lowest), which puts the most time between a pod's release of an address and its next use, beyond the
// cooldown (aws#2492), and leaves the recently idle ones, whose reclaim is furthest away, for later.
func (p *Pool) pick(c Class) *addr {
	count := map[string]int{}
	for _, a := range p.addrs {
		if p.idle(a) && c.Matches(p.enis[a.eni]) {
			count[a.eni]++
		}
	}
	p.pairable(count) // dual stack: only ENIs with a free IPv6 address
	best := ""
	for id, n := range count {
		if best == "" || n < count[best] || n == count[best] && id < best {
			best = id
		}
	}
	if best == "" {
		return nil
	}
	var pickd *addr
	for i, ip := range p.enis[best].Addrs {
		a := p.addrs[ip]
		if a == nil || a.eni != best || !p.idle(a) {
			continue
		}
		if i == 0 {
			return a
		}
		if pickd == nil || a.since.Before(pickd.since) || a.since.Equal(pickd.since) && a.ip.Less(pickd.ip) {
			pickd = a
		}
	}
	return pickd
}

// Abandon stops counting a pod as waiting (its ADD gave up).
func (p *Pool) Abandon(containerID, ifName string) {
	p.begin()
	defer p.mu.Unlock()
	if k := (podKey{containerID, ifName}); p.waiting[k] {
		delete(p.waiting, k)
		p.notify()
	}
}

// Release puts the pod's address into cooldown at now, saved before returning. An unknown pod: ok false, err nil
// (DEL is idempotent). A quarantined record of the pod is dropped and its address cools down.
// A failed save undoes the release and returns the error (the DEL fails and is retried).
func (p *Pool) Release(containerID, ifName string) (ip netip.Addr, ok bool, err error) {
	now := p.begin()
	defer p.mu.Unlock()
	k := podKey{containerID, ifName}
	if p.waiting[k] {
		delete(p.waiting, k)
		p.notify()
	}
	r := p.pods[k]
	if r == nil {
		return netip.Addr{}, false, nil
	}
	old := *r
	var cool *checkpoint.Record
	if r.State == checkpoint.Assigned {
		if !p.reserveOnRelease(r, now) {
			r.State, r.ReleasedAt, r.Reserve, r.StatefulSet = checkpoint.Cooldown, now, false, ""
			p.cooling(r)
			r.ContainerID, r.Netns, r.IfName = "", "", "" // the pod's key is free again; a new ADD of it must not collide
		}
		delete(p.pods, k)
	} else {
		// The pod may have used the address until now: it cools down like any released one, even when the
		// cloud no longer lists it (it may come back), unless another record still holds it.
		eni := r.ENI
		if a := p.addrs[r.IP]; a != nil {
			eni = a.eni
		}
		p.delRec(r, now)
		if eni != "" && len(p.recs[r.IP]) == 0 {
			cool = &checkpoint.Record{IP: r.IP, ENI: eni, State: checkpoint.Cooldown, PodNamespace: r.PodNamespace,
				PodName: r.PodName, AssignedAt: r.AssignedAt, ReleasedAt: now, IPv6: r.IPv6}
			p.addRec(cool)
		}
	}
	if err := p.save(); err != nil {
		if cool != nil {
			p.delRec(cool, now)
			p.addRec(r)
		} else if old.State == checkpoint.Assigned {
			p.unreserve(r)
			*r = old
			p.pods[k] = r
		} else {
			p.addRec(r)
		}
		return netip.Addr{}, false, fmt.Errorf("release %s/%s: %w", containerID, ifName, err)
	}
	p.notify()
	return old.IP, true, nil
}
