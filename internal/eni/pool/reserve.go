package pool

// Fixed pod addresses. A pod that asks for it (Pod.Reserve: a StatefulSet's pod, or one annotated
// k8s.aliyun.com/pod-ip-reservation: "true"; the caller decides) keeps its address across its deletion and
// re-creation: its release does not start a cooldown but a reservation, a Reserved record of the pod's namespace,
// name and interface until the release plus Config.ReserveTTL, and the next Allocate for a pod of that name and
// interface, whatever its container, gets the same address again.
//
// A reserved address is neither idle nor releasable (it holds a record) and counts against the node's limit like
// an assigned one while an ENI lists it: the node must be able to take the pod back. The reservation ends
//   - when ReservedUntil passes: the record becomes Cooldown from its release, so the address is idle once the
//     cooldown after the pod's last use is over (at once when the TTL was the longer);
//   - when EndReservation says so (the pod's StatefulSet scaled below the pod's ordinal, or deleted), the same way;
//   - when a pod of that name comes back that does not ask for a reservation, or the address is no longer listed
//     on any ENI of the view when the pod comes back (it then gets another address).
// While a pod holds the address (Assigned), a second attachment of the same name (another sandbox) is never given
// it: it is not idle. A release while another attachment of the same pod holds an address cools down as usual, so
// a pod keeps at most one reserved address per interface. ReserveTTL 0 turns reservations off: restored ones end
// at once. Ended reservations, like ended cooldowns, reach the checkpoint with the next save.

import (
	"time"

	"github.com/weftnet/weft/internal/eni/checkpoint"
)

// resKey is the pod a reservation is kept for.
type resKey struct{ namespace, name, ifName string }

func resKeyOf(r *checkpoint.Record) resKey { return resKey{r.PodNamespace, r.PodName, r.IfName} }

// reserving notes the end of a Reserved record's reservation for tick.
func (p *Pool) reserving(r *checkpoint.Record) {
	if r.State != checkpoint.Reserved {
		return
	}
	p.reserved[resKeyOf(r)] = r
	if p.resEnd.IsZero() || r.ReservedUntil.Before(p.resEnd) {
		p.resEnd = r.ReservedUntil
	}
}

// unreserve drops r from the reserved index (its state is about to change, or it goes).
func (p *Pool) unreserve(r *checkpoint.Record) {
	if k := resKeyOf(r); p.reserved[k] == r {
		delete(p.reserved, k)
	}
}

// restoreReserved brings a restored Reserved record within the configuration: a clock that went back must not
// stretch the reservation beyond ReserveTTL from now, and with reservations off it ends at once.
func (p *Pool) restoreReserved(r *checkpoint.Record, now time.Time) {
	if r.State != checkpoint.Reserved {
		return
	}
	if r.ReleasedAt.After(now) {
		r.ReleasedAt = now
	}
	if limit := now.Add(p.cfg.ReserveTTL); r.ReservedUntil.After(limit) {
		r.ReservedUntil = limit // not before ReleasedAt, which is at most now
	}
	if p.cfg.ReserveTTL == 0 {
		endReservation(r)
	}
}

// endReservation turns a Reserved record into the Cooldown record its release would have made.
func endReservation(r *checkpoint.Record) {
	r.State, r.ReservedUntil, r.Reserve, r.StatefulSet = checkpoint.Cooldown, time.Time{}, false, ""
	r.IfName = "" // as a released record: the pod's key is free
}

// end ends one reservation in place, keeping the indexes.
func (p *Pool) end(r *checkpoint.Record) {
	p.unreserve(r)
	endReservation(r)
	p.cooling(r)
}

// expireReservations ends the reservations whose time is over at now; it reports whether any did.
func (p *Pool) expireReservations(now time.Time) bool {
	if p.resEnd.IsZero() || now.Before(p.resEnd) {
		return false
	}
	p.resEnd = time.Time{}
	var over []*checkpoint.Record
	for _, r := range p.reserved {
		if !now.Before(r.ReservedUntil) {
			over = append(over, r)
		} else if p.resEnd.IsZero() || r.ReservedUntil.Before(p.resEnd) {
			p.resEnd = r.ReservedUntil
		}
	}
	for _, r := range over {
		p.end(r)
	}
	return len(over) > 0
}

// reserveOnRelease turns the Assigned record r of a pod that asked for it into a Reserved one at now, and reports
// whether it did. It does not when reservations are off, the record names no pod, or another attachment of the
// same pod holds an address or a reservation (that one carries the pod's address on).
func (p *Pool) reserveOnRelease(r *checkpoint.Record, now time.Time) bool {
	if !r.Reserve || p.cfg.ReserveTTL <= 0 || r.PodNamespace == "" || r.PodName == "" || r.IfName == "" || r.ENI == "" {
		return false
	}
	k := resKeyOf(r)
	if p.reserved[k] != nil {
		return false
	}
	for _, o := range p.pods {
		if o != r && o.State == checkpoint.Assigned && resKeyOf(o) == k {
			return false
		}
	}
	r.State, r.ReleasedAt, r.ReservedUntil = checkpoint.Reserved, now, now.Add(p.cfg.ReserveTTL)
	r.ContainerID, r.Netns = "", ""
	p.reserving(r)
	return true
}

// takeReserved serves an Allocate from the pod's reservation, if it has one: done false means Allocate goes on
// as for any pod (no reservation, or one just ended). The reservation is taken when the pod asks for one and its
// address is listed on a usable ENI: the record becomes the pod's Assigned one, saved before returning. Listed on
// an ENI not usable yet: ErrNoIdle (the pod waits for it). A pod that does not ask for a reservation, or an
// address listed on no ENI any more, ends it.
func (p *Pool) takeReserved(pod Pod, now time.Time) (Allocation, bool, error) {
	r := p.reserved[resKey{pod.Namespace, pod.Name, pod.IfName}]
	if r == nil {
		return Allocation{}, false, nil
	}
	a := p.addrs[r.IP]
	if !pod.Reserve || p.cfg.ReserveTTL <= 0 || a == nil {
		p.end(r) // saved with the allocation that follows, or by Sync
		p.unsaved = true
		p.tick(now)
		return Allocation{}, false, nil
	}
	k := podKey{pod.ContainerID, pod.IfName}
	if e := p.enis[a.eni]; e == nil || !e.Usable || a.releasing {
		if !p.waiting[k] {
			p.waiting[k] = true
			p.notify()
		}
		return Allocation{}, true, ErrNoIdle
	}
	old := *r
	p.unreserve(r)
	r.State, r.ContainerID, r.Netns, r.ENI, r.AssignedAt = checkpoint.Assigned, pod.ContainerID, pod.Netns, a.eni, now
	r.ReleasedAt, r.ReservedUntil, r.Reserve, r.StatefulSet = time.Time{}, time.Time{}, true, pod.StatefulSet
	p.pods[k] = r
	wasWaiting := p.waiting[k]
	delete(p.waiting, k)
	if err := p.save(); err != nil {
		delete(p.pods, k)
		*r = old
		p.reserving(r)
		if wasWaiting {
			p.waiting[k] = true
		}
		return Allocation{}, true, err
	}
	p.notify()
	return p.allocation(r.IP, r.ENI), true, nil
}

// EndReservation ends the reservations kept for the pod namespace/name (every interface), saved before returning:
// their addresses cool down from their release, as if the pod had not asked for one. It returns the addresses.
// A failed save keeps the reservations and returns the error.
func (p *Pool) EndReservation(namespace, name string) ([]checkpoint.Record, error) {
	now := p.begin()
	defer p.mu.Unlock()
	var ended []*checkpoint.Record
	var olds []checkpoint.Record
	for k, r := range p.reserved {
		if k.namespace == namespace && k.name == name {
			ended = append(ended, r)
			olds = append(olds, *r)
		}
	}
	if len(ended) == 0 {
		return nil, nil
	}
	for _, r := range ended {
		p.end(r)
	}
	if err := p.save(); err != nil {
		for i, r := range ended {
			*r = olds[i]
			p.reserving(r)
		}
		return nil, err
	}
	p.tick(now)
	p.notify()
	return olds, nil
}
