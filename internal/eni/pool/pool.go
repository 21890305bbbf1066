// Package pool is the eni backend's address pool: which secondary IPv4 address of the node's shared ENIs each pod
// holds, which are idle, and which cloud actions (assign, create an ENI, unassign) keep a warm pool of idle
// addresses. It is pure and safe for concurrent use: time comes from an injected Clock, persistence from an
// injected Checkpointer, it starts no goroutines and does no I/O of its own; weftd observes the cloud and the host,
// feeds the pool (SetENIs, Assigned, Unassigned) and carries out its Plan.
//
// # Addresses
//
// An address listed on an ENI of the last SetENIs view is in one of five states: idle (on a Usable ENI, held by
// no one: Allocate may hand it out), assigned (a pod holds it), cooldown (released at ReleasedAt; not handed out
// before ReleasedAt + Cooldown, then idle again), quarantined (the truths disagree, Reason says how: never handed
// out), releasing (BeginUnassign took it for an UnassignPrivateIpAddresses call in flight) or reserved (kept for
// a pod that asked to keep its address, until the pod comes back or the reservation ends: reserve.go). Records,
// the checkpoint, holds the assigned, cooldown, quarantined and reserved ones; idle and releasing addresses are what the cloud
// lists and need no record. Every change of Records that a pod sees (Allocate, Release) or that protects one
// (Quarantine) is saved before the call returns: an address handed out twice or leaked after a crash is the most
// common field failure of pod IPAMs (aws#972, #1188, #2110). Records restored at start (reconcile's outcome) are
// taken as given: assigned stay assigned, cooldown keep their ReleasedAt, so the cooldown survives a restart,
// quarantined stay quarantined.
//
// # The warm pool
//
// Asking the cloud for an address takes seconds (an ENI: tens of seconds), so pods start on addresses taken in
// advance. Three figures size the pool: the floor MinIdle (min_pool_size), the target TargetIdle
// (warm_pool_target) and the ceiling MaxIdle (max_pool_size). Plan grows the pool back to the target plus the
// waiting pods only when idle falls below the floor or a pod waits, and shrinks it back to the target only when
// idle exceeds the ceiling: between floor and ceiling nothing happens. This hysteresis is what keeps a node whose
// pods come and go from assigning and unassigning addresses in a loop and spending the region's API budget on it
// (aws#1451, #1700, #2896); a zero warm target is refused because it makes every pod start wait for the cloud.
//
// Releasing is deliberately late, batched and jittered: an address is released only after it has been idle for
// IdleReclaimAfter (a burst of pods that ends is often followed by the next), at most ReclaimBatch addresses per
// plan, grouped per ENI so that one UnassignPrivateIpAddresses call carries them, and each address's wait is
// stretched by a random factor up to ReclaimJitter, drawn once when it became idle, so that the nodes of a
// cluster scaled down together do not all call the API in the same second. Nothing is released while the pool is
// degraded (the cloud API unhealthy): a release is never urgent, and a node that has shed addresses it then
// cannot get back is worse off than one holding a few too many.
//
// The cooldown (at least 30 s) keeps a released address from the next pod for a while: connections of the old
// pod, conntrack entries and caches elsewhere in the VPC still point at it, and reusing it at once hands the
// new pod the old pod's traffic (aws#2492, #3634).
//
// # Capacity
//
// The node holds at most Limits.Pods() = (EniQuantity - 1) x EniPrivateIpAddressQuantity pod addresses: the
// primary ENI carries the node's own address and no pods, every secondary ENI's addresses, its primary included,
// may carry pods. Allocate refuses with *LimitError when the addresses held by pods plus the quarantined addresses
// still listed on an ENI reach that figure: a quarantined address takes a slot the cloud will not give twice, so
// counting it reports the capacity the node really has left (aws#330, #1724). Cooldown addresses do not count:
// they are idle again within the cooldown, so a pod meanwhile gets ErrNoIdle and waits.
//
// # Carrying out a plan
//
// Plan is a reading of the state, not a reservation, so the caller runs one plan at a time, reports its outcome,
// and only then asks for the next: Assigned after AssignPrivateIpAddresses or CreateNetworkInterface (for a new
// ENI, all its addresses, primary first: the pool then knows the ENI, not yet Usable, until SetENIs says
// otherwise), BeginUnassign before and Unassigned after UnassignPrivateIpAddresses, and SetENIs with a view read
// after the last call completed. Plan asks for at most one CreateENI at a time: never while an ENI the pool knows
// of is not Usable, and the addresses of such an ENI count as coming, so the pool does not also fill the gap
// elsewhere. The pool never asks to delete an ENI; the ENI GC does that for detached ones.
//
// A pod that finds nothing idle gets ErrNoIdle and counts as waiting, so Plan asks for its address, until it gets
// one, is released or abandoned. Changed is closed at every state change: a waiting ADD waits on it and retries;
// the plan loop waits on it and on Plan's NextCheck, the next time the plan changes with no event (a cooldown
// ends, a reclaim falls due). Time-driven changes happen when the pool is next called at or after that time.
//
// Allocate, Release and Quarantine hold the pool's lock while the checkpoint is saved: saves happen in the order
// of the changes, so a later state never reaches the disk before an earlier one, at the price of serialising
// ADDs and DELs behind the disk (a save is one small file written and renamed).
package pool

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/weftnet/weft/internal/eni/checkpoint"
)

// Clock tells the time.
type Clock interface{ Now() time.Time }

// Checkpointer saves the pool's records (checkpoint.Store in weftd).
type Checkpointer interface{ Save(*checkpoint.File) error }

// ENI is one secondary ENI as observed in the cloud and on the host.
type ENI struct {
	ID, MAC, VSwitchID string
	Addrs              []netip.Addr // every IPv4 address the cloud lists on it, primary first; pods may use all of them
	Usable             bool         // InUse in the cloud, found on the host and set up: only then are its addresses served
	SecurityGroups     []string     // the groups the ENI is in, for the pod's Class (class.go)
	IPv6               []netip.Addr // dual stack (dual.go): the IPv6 addresses the cloud lists on it
}

// Pod identifies a CNI attachment and the pod it belongs to. Reserve and StatefulSet (reserve.go): the pod keeps
// its address for Config.ReserveTTL after its release, and the StatefulSet owning it, if any, whose scale-down
// ends that.
type Pod struct {
	ContainerID, Netns, IfName, Namespace, Name string
	Reserve                                     bool
	StatefulSet                                 string
	Class                                       *Class // the ENIs the pod may use (class.go); nil: Config.Default
}

// Allocation is an address handed to a pod and the ENI it lives on.
type Allocation struct {
	IP  netip.Addr
	ENI ENI
	// IPv6 (dual stack, dual.go): the IPv6 address of the same ENI paired with IP; invalid when IPv4 only.
	IPv6 netip.Addr
}

// ErrNoIdle says no address is idle now but the limit allows more: the caller waits on Changed and retries.
var ErrNoIdle = errors.New("no idle pod address now: more are on their way from the cloud")

// Assign asks for N more secondary addresses on an ENI (1..10, the API's per-call maximum).
type Assign struct {
	ENI string
	N   int
}

// Unassign asks to release idle addresses of one ENI.
type Unassign struct {
	ENI string
	IPs []netip.Addr
}

// Plan is what the pool wants from the cloud now.
type Plan struct {
	Assign    []Assign
	CreateENI int        // > 0: create one more ENI with this many secondary addresses (1..9) beside its primary
	Unassign  []Unassign // never while degraded
	NextCheck time.Time  // the next time Plan may change with no event (a cooldown ending, a reclaim due); zero: none

	// CreateWhole: create one more ENI with no secondary address (Limits.Exclusive: a pod takes the whole ENI).
	CreateWhole bool
	// Class of the ENI CreateENI or CreateWhole asks for (class.go); nil: Config.Default.
	Class *Class

	// Dual stack (dual.go): IPv6 addresses to assign and release (a new ENI gets as many IPv6 addresses as IPv4
	// ones from its creator, Limits.NewENIIPv6).
	AssignIPv6   []Assign
	UnassignIPv6 []Unassign
}

// Stats counts the pool's addresses.
type Stats struct {
	Idle, Assigned, Cooldown, Quarantined, Releasing, Waiting, ENIs, Capacity int
	Reserved                                                                  int // kept for a pod that is gone (reserve.go)
	Degraded                                                                  bool
}

// maxPerCall is the most addresses one AssignPrivateIpAddresses call takes, and the most a new ENI gets (with
// its primary).
const maxPerCall = 10

type podKey struct{ containerID, ifName string }

// addr is an address the current view lists.
type addr struct {
	ip        netip.Addr
	eni       string
	since     time.Time     // held by no record since
	wait      time.Duration // IdleReclaimAfter stretched by the jitter drawn at since
	releasing bool
}

// Pool is the address pool. Its methods are safe for concurrent use.
type Pool struct {
	cfg  Config
	clk  Clock
	cp   Checkpointer
	rand func() float64

	mu         sync.Mutex
	enis       map[string]*ENI                     // the view (SetENIs, Assigned), Addrs primary first
	addrs      map[netip.Addr]*addr                // every address the view lists
	recs       map[netip.Addr][]*checkpoint.Record // Assigned, Cooldown and Quarantined records by address
	pods       map[podKey]*checkpoint.Record       // Assigned and Quarantined records of a pod
	reserved   map[resKey]*checkpoint.Record       // Reserved records by their pod (reserve.go)
	waiting    map[podKey]bool
	waitClass  map[podKey]Class    // the class of a waiting pod that asks for one other than the default (class.go)
	releasing6 map[netip.Addr]bool // dual stack: IPv6 addresses in an UnassignIpv6Addresses call (dual.go)
	lost       []checkpoint.Record
	degraded   bool
	changed    chan struct{}
	coolEnd    time.Time // no cooldown ends before; zero: none running
	resEnd     time.Time // no reservation ends before; zero: none
	unsaved    bool      // records changed with time or the view since the last save (Sync)
}

// New returns a pool holding the restored records (reconcile's outcome) and no ENIs yet: SetENIs comes next.
func New(cfg Config, clk Clock, cp Checkpointer, restored []checkpoint.Record) (*Pool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("pool config: %w", err)
	}
	if clk == nil || cp == nil {
		return nil, errors.New("pool: a clock and a checkpointer are required")
	}
	p := &Pool{cfg: cfg, clk: clk, cp: cp, rand: cfg.Rand,
		enis: map[string]*ENI{}, addrs: map[netip.Addr]*addr{}, recs: map[netip.Addr][]*checkpoint.Record{},
		pods: map[podKey]*checkpoint.Record{}, reserved: map[resKey]*checkpoint.Record{}, waiting: map[podKey]bool{}, waitClass: map[podKey]Class{}, changed: make(chan struct{}),
		releasing6: map[netip.Addr]bool{}}
	if p.rand == nil {
		p.rand = rand.Float64
	}
	now := clk.Now()
	held := map[netip.Addr]int{}
	for i, r := range restored {
		if err := checkRecord(i, r); err != nil {
			return nil, err
		}
		k := podKey{r.ContainerID, r.IfName}
		if r.State != checkpoint.Cooldown && r.ContainerID != "" {
			if _, dup := p.pods[k]; dup {
				return nil, fmt.Errorf("restored record %d (containerID, ifName): %s/%s appears twice", i, r.ContainerID, r.IfName)
			}
		}
		if r.State != checkpoint.Quarantined {
			if j, dup := held[r.IP]; dup {
				return nil, fmt.Errorf("restored record %d (ip): %s is also held by record %d", i, r.IP, j)
			}
			held[r.IP] = i
		}
		if r.State == checkpoint.Reserved {
			if j, dup := p.reserved[resKeyOf(&r)]; dup {
				return nil, fmt.Errorf("restored record %d (podName): %s/%s %s has an address reserved twice (%s and %s)", i, r.PodNamespace, r.PodName, r.IfName, j.IP, r.IP)
			}
		}
		rec := r
		if rec.State == checkpoint.Cooldown && rec.ReleasedAt.After(now) {
			rec.ReleasedAt = now // a clock that went back must not stretch the cooldown; it still runs in full from now
		}
		p.restoreReserved(&rec, now)
		p.addRec(&rec)
	}
	return p, nil
}

func checkRecord(i int, r checkpoint.Record) error {
	if !r.IP.Is4() {
		return fmt.Errorf("restored record %d (ip): %v, want an IPv4 address", i, r.IP)
	}
	switch r.State {
	case checkpoint.Assigned:
		if r.ContainerID == "" || r.IfName == "" {
			return fmt.Errorf("restored record %d (containerID, ifName): empty in an Assigned record of %s", i, r.IP)
		}
		if r.ENI == "" {
			return fmt.Errorf("restored record %d (eni): empty in an Assigned record of %s", i, r.IP)
		}
	case checkpoint.Cooldown:
		if r.ReleasedAt.IsZero() {
			return fmt.Errorf("restored record %d (releasedAt): empty in a Cooldown record of %s", i, r.IP)
		}
	case checkpoint.Quarantined:
	case checkpoint.Reserved:
		if r.PodName == "" || r.IfName == "" || r.ENI == "" || r.ReservedUntil.IsZero() || r.ReleasedAt.IsZero() {
			return fmt.Errorf("restored record %d (podName, ifName, eni, releasedAt, reservedUntil): one empty in a Reserved record of %s", i, r.IP)
		}
	default:
		return fmt.Errorf("restored record %d (state): %q, want Assigned, Cooldown, Quarantined or Reserved", i, r.State)
	}
	return nil
}

// cooling notes the end of a Cooldown record's cooldown for tick.
func (p *Pool) cooling(r *checkpoint.Record) {
	if end := r.ReleasedAt.Add(p.cfg.Cooldown); r.State == checkpoint.Cooldown && (p.coolEnd.IsZero() || end.Before(p.coolEnd)) {
		p.coolEnd = end
	}
}

// addRec and delRec keep recs and pods in step. delRec frees a listed address its last record leaves.
func (p *Pool) addRec(r *checkpoint.Record) {
	p.recs[r.IP] = append(p.recs[r.IP], r)
	p.index(r)
}

// index enters a record of recs in pods or reserved by its state, and notes its cooldown or reservation end.
func (p *Pool) index(r *checkpoint.Record) {
	p.cooling(r)
	p.reserving(r)
	if r.State != checkpoint.Cooldown && r.ContainerID != "" {
		p.pods[podKey{r.ContainerID, r.IfName}] = r
	}
}

func (p *Pool) delRec(r *checkpoint.Record, freedAt time.Time) {
	rs := slices.DeleteFunc(p.recs[r.IP], func(x *checkpoint.Record) bool { return x == r })
	if len(rs) == 0 {
		delete(p.recs, r.IP)
		if a := p.addrs[r.IP]; a != nil {
			p.free(a, freedAt)
		}
	} else {
		p.recs[r.IP] = rs
	}
	if k := (podKey{r.ContainerID, r.IfName}); p.pods[k] == r {
		delete(p.pods, k)
	}
	p.unreserve(r)
}

// free marks an address held by no one since at and draws its reclaim jitter.
func (p *Pool) free(a *addr, at time.Time) {
	f := p.rand()
	if !(f >= 0 && f < 1) { // a Rand out of its range (or NaN) must not stretch the wait without bound
		f = 0
	}
	a.since = at
	a.wait = p.cfg.IdleReclaimAfter + time.Duration(float64(p.cfg.IdleReclaimAfter)*f*p.cfg.ReclaimJitter)
}

func (p *Pool) idle(a *addr) bool {
	e := p.enis[a.eni]
	return e != nil && e.Usable && !a.releasing && len(p.recs[a.ip]) == 0
}

func (p *Pool) notify() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// tick ends the cooldowns that are over at now; it reports whether any did.
func (p *Pool) tick(now time.Time) bool {
	ended := p.expireReservations(now) // first: an ended reservation whose cooldown is over is idle at once
	if p.coolEnd.IsZero() || now.Before(p.coolEnd) {
		if ended {
			p.unsaved = true
			p.notify()
		}
		return ended // the common case, in O(1): Allocate must not scan every record
	}
	var over []*checkpoint.Record
	p.coolEnd = time.Time{}
	for _, rs := range p.recs {
		for _, r := range rs {
			if r.State != checkpoint.Cooldown {
				continue
			}
			if end := r.ReleasedAt.Add(p.cfg.Cooldown); !now.Before(end) {
				over = append(over, r)
			} else if p.coolEnd.IsZero() || end.Before(p.coolEnd) {
				p.coolEnd = end
			}
		}
	}
	for _, r := range over {
		p.delRec(r, r.ReleasedAt.Add(p.cfg.Cooldown))
	}
	if len(over) > 0 || ended {
		p.unsaved = true
		p.notify()
	}
	return len(over) > 0 || ended
}

// begin locks the pool and brings it to now.
func (p *Pool) begin() time.Time {
	p.mu.Lock()
	now := p.clk.Now()
	p.tick(now)
	return now
}

func (p *Pool) records() []checkpoint.Record {
	ptrs := make([]*checkpoint.Record, 0, len(p.recs))
	for _, rs := range p.recs {
		ptrs = append(ptrs, rs...)
	}
	slices.SortFunc(ptrs, func(a, b *checkpoint.Record) int {
		if c := a.IP.Compare(b.IP); c != 0 { // cmp.Or would compare every field every time
			return c
		}
		return cmp.Or(cmp.Compare(a.State, b.State), cmp.Compare(a.ContainerID, b.ContainerID),
			cmp.Compare(a.IfName, b.IfName), cmp.Compare(a.Reason, b.Reason))
	})
	out := make([]checkpoint.Record, len(ptrs))
	for i, r := range ptrs {
		out[i] = *r
	}
	return out
}

func (p *Pool) save() error {
	if err := p.cp.Save(&checkpoint.File{Version: checkpoint.Version, Instance: p.cfg.Instance, Records: p.records()}); err != nil {
		return fmt.Errorf("save the address checkpoint: %w", err)
	}
	p.unsaved = false
	return nil
}

// Sync saves the checkpoint if records changed since the last save without one: cooldowns and reservations that
// ended with time, addresses SetENIs quarantined. weftd calls it now and then, so the file on disk says what the
// pool does (a restart would come to the same from the older file).
func (p *Pool) Sync() error {
	p.begin()
	defer p.mu.Unlock()
	if !p.unsaved {
		return nil
	}
	return p.save()
}

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

// Lookup returns the pod's record (Assigned or Quarantined).
func (p *Pool) Lookup(containerID, ifName string) (checkpoint.Record, bool) {
	p.mu.Lock() // a pod's record does not depend on the time
	defer p.mu.Unlock()
	if r := p.pods[podKey{containerID, ifName}]; r != nil {
		return *r, true
	}
	return checkpoint.Record{}, false
}

// Quarantine takes an address out of service for good (until a restart's reconcile or the Release of the pod
// holding it): its record, or a new one, becomes Quarantined with the reason. The quarantine holds in memory even
// when the save fails (handing the address out would be the worse error); the save's error is returned.
func (p *Pool) Quarantine(ip netip.Addr, reason string) error {
	p.begin()
	defer p.mu.Unlock()
	if !ip.Is4() {
		return fmt.Errorf("quarantine: %v, want an IPv4 address", ip)
	}
	if reason == "" {
		reason = "quarantined by weftd"
	}
	changed := false
	rs := p.recs[ip]
	for _, r := range rs {
		if r.State == checkpoint.Quarantined {
			return nil
		}
	}
	for _, r := range rs {
		p.unreserve(r)
		r.State, r.Reason, r.ReservedUntil = checkpoint.Quarantined, reason, time.Time{}
		r.Reserve, r.StatefulSet = false, ""
		if r.ContainerID != "" {
			p.pods[podKey{r.ContainerID, r.IfName}] = r
		}
		changed = true
	}
	if !changed {
		r := &checkpoint.Record{IP: ip, State: checkpoint.Quarantined, Reason: reason}
		if a := p.addrs[ip]; a != nil {
			r.ENI = a.eni
			a.releasing = false
		}
		p.addRec(r)
	}
	p.notify()
	return p.save()
}

// Records returns the records to checkpoint: Assigned, Cooldown, Quarantined and Reserved, sorted by address.
func (p *Pool) Records() []checkpoint.Record {
	p.begin()
	defer p.mu.Unlock()
	return p.records()
}

// Lost returns, once, the Assigned records quarantined because the cloud no longer lists their address on their
// ENI (the pods to report).
func (p *Pool) Lost() []checkpoint.Record {
	p.begin()
	defer p.mu.Unlock()
	l := p.lost
	p.lost = nil
	return l
}

// SetDegraded turns the degraded mode (the cloud API unhealthy: no releases) on or off. The reason is the
// caller's to log and report; the pool keeps only the mode (Stats.Degraded).
func (p *Pool) SetDegraded(on bool, reason string) {
	p.begin()
	defer p.mu.Unlock()
	if p.degraded != on {
		p.degraded = on
		p.notify()
	}
}

// Stats counts the addresses by state. Capacity is Limits.Pods().
func (p *Pool) Stats() Stats {
	p.begin()
	defer p.mu.Unlock()
	s := Stats{Waiting: len(p.waiting), ENIs: len(p.enis), Capacity: p.cfg.Limits.Pods(), Degraded: p.degraded}
	for _, a := range p.addrs {
		switch {
		case p.idle(a):
			s.Idle++
		case a.releasing:
			s.Releasing++
		}
	}
	for _, rs := range p.recs {
		for _, r := range rs {
			switch r.State {
			case checkpoint.Assigned:
				s.Assigned++
			case checkpoint.Cooldown:
				s.Cooldown++
			case checkpoint.Quarantined:
				s.Quarantined++
			case checkpoint.Reserved:
				s.Reserved++
			}
		}
	}
	return s
}

// Changed returns a channel closed at the next state change.
func (p *Pool) Changed() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.changed
}
