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

// This file: the pool's types, New, its lock and change notification, the degraded mode and Stats. The rest by
// job: records.go (records, cooldown ends, saving), allocate.go (Allocate, Release), quarantine.go, view.go
// (SetENIs), plan.go (the warm-pool plan), config.go, reserve.go, class.go, dual.go.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
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

func (p *Pool) notify() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// begin locks the pool and brings it to now.
func (p *Pool) begin() time.Time {
	p.mu.Lock()
	now := p.clk.Now()
	p.tick(now)
	return now
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
