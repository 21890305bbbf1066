package pool

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// MinCooldown is the shortest cooldown Validate accepts: a released address handed to the next pod sooner breaks
// the old pod's connections that still reach it (aws#2492, #3634).
const MinCooldown = 30 * time.Second

// Limits are the instance type's ENI figures the pool sizes itself by.
type Limits struct {
	InstanceType string
	ENIs         int // secondary ENIs allowed: EniQuantity - 1
	AddrsPerENI  int // IPv4 addresses per ENI, primary included: EniPrivateIpAddressQuantity
	// Exclusive: each pod holds a whole ENI (the eni backend's exclusive mode): AddrsPerENI is 1, the primary.
	Exclusive bool
	// Members (exclusive mode with trunking, trunk.go): how many of ENIs are trunk member ENIs.
	Members int
	// IPv6PerENI (dual stack, ip_stack "dual"): EniIpv6AddressQuantity, the IPv6 addresses one ENI takes; 0: IPv4
	// only. Every pod pairs an IPv4 with an IPv6 address of the same ENI (dual.go), so an ENI carries at most
	// min(AddrsPerENI, IPv6PerENI) pods. In exclusive mode 0 or 1: the pod's ENI carries one IPv6 address.
	IPv6PerENI int
}

// Pods is the pods the node holds on shared ENIs: (EniQuantity - 1) x EniPrivateIpAddressQuantity, the figure of
// instancetype.Type.SharedENIPods and of weft plan; with dual stack (EniQuantity - 1) x min(that,
// EniIpv6AddressQuantity).
func (l Limits) Pods() int { return max(l.ENIs, 0) * max(l.perENI(), 0) }

// perENI is the pods one ENI carries.
func (l Limits) perENI() int {
	if l.IPv6PerENI > 0 {
		return min(l.AddrsPerENI, l.IPv6PerENI)
	}
	return l.AddrsPerENI
}

// Config is the pool's sizing and timing (the net-conf keys of the eni backend, Terway's names).
type Config struct {
	MinIdle, TargetIdle, MaxIdle int           // floor, target, ceiling of idle addresses (min_pool_size, warm_pool_target, max_pool_size)
	Cooldown                     time.Duration // >= 30 s (cooldown)
	ReserveTTL                   time.Duration // how long a released address is kept for its pod (ip_reservation_ttl; reserve.go); 0: never
	IdleReclaimAfter             time.Duration // idle at least this long before an address is released (idle_ip_reclaim_after)
	ReclaimBatch                 int           // most addresses one release takes, >= 1 (idle_ip_reclaim_batch_size)
	ReclaimJitter                float64       // 0..1: a release waits IdleReclaimAfter * (1 + Rand()*jitter) (idle_ip_reclaim_jitter_factor)
	Limits                       Limits
	Instance                     string         // File.Instance: the ECS instance the checkpoint belongs to
	Default                      Class          // the class of pods that ask for none (class.go); zero: every ENI
	Rand                         func() float64 // [0, 1); nil: math/rand/v2
}

// Validate checks every field and reports all problems at once, each naming the net-conf key.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.MinIdle < 0 {
		bad("min_pool_size: %d, want 0 or more", c.MinIdle)
	}
	if floor := max(c.MinIdle, 1); c.TargetIdle < floor {
		bad("warm_pool_target: %d, want at least %d (min_pool_size %d, and never a zero warm target: every pod start would wait for the cloud)",
			c.TargetIdle, floor, c.MinIdle)
	}
	if c.MaxIdle < c.TargetIdle {
		bad("max_pool_size: %d, want at least warm_pool_target (%d)", c.MaxIdle, c.TargetIdle)
	}
	if c.Cooldown < MinCooldown {
		bad("cooldown: %s, want at least %s (a released address reused sooner breaks the old pod's connections)", c.Cooldown, MinCooldown)
	}
	if c.ReserveTTL < 0 {
		bad("ip_reservation_ttl: %s, want 0 (no fixed addresses) or more", c.ReserveTTL)
	}
	if c.IdleReclaimAfter < 0 {
		bad("idle_ip_reclaim_after: %s, want 0 or more", c.IdleReclaimAfter)
	}
	if c.ReclaimBatch < 1 {
		bad("idle_ip_reclaim_batch_size: %d, want 1 or more", c.ReclaimBatch)
	}
	if math.IsNaN(c.ReclaimJitter) || c.ReclaimJitter < 0 || c.ReclaimJitter > 1 {
		bad("idle_ip_reclaim_jitter_factor: %v, want 0 to 1", c.ReclaimJitter)
	}
	if c.Limits.InstanceType == "" {
		bad("limits: the instance type is empty")
	}
	if c.Limits.ENIs < 1 {
		bad("limits: %d secondary ENIs for %s, want 1 or more (EniQuantity - 1)", c.Limits.ENIs, c.Limits.InstanceType)
	}
	if c.Limits.AddrsPerENI < 1 {
		bad("limits: %d addresses per ENI for %s, want 1 or more (EniPrivateIpAddressQuantity)", c.Limits.AddrsPerENI, c.Limits.InstanceType)
	}
	if c.Limits.IPv6PerENI < 0 {
		bad("limits: %d IPv6 addresses per ENI for %s, want 0 (IPv4 only) or more (EniIpv6AddressQuantity)", c.Limits.IPv6PerENI, c.Limits.InstanceType)
	}
	if c.Limits.IPv6PerENI > 1 && c.Limits.Exclusive {
		bad("limits: dual stack with %d IPv6 addresses per ENI in exclusive mode: want IPv6PerENI 0 or 1 (a pod's ENI carries its one IPv6 address)", c.Limits.IPv6PerENI)
	}
	if c.Instance == "" {
		bad("instance: empty, want the ECS instance id the checkpoint belongs to")
	}
	return errors.Join(errs...)
}

// LimitError says the node holds all the pods its instance type allows on shared ENIs.
type LimitError struct {
	Limits Limits
	InUse  int // addresses held by pods, plus quarantined addresses that still take a slot on an ENI
	// Class: set when the limit is that of the pod's class (class.go): no ENI of it has room and the node has no
	// ENI slot left.
	Class string
}

func (e *LimitError) Error() string {
	l := e.Limits
	if e.Class != "" && e.InUse < l.Pods() {
		return fmt.Sprintf("node is at its ENI limit for the pod's class (%s): no ENI of that class has room and %s takes no more than %d ENIs (the primary and %d), all in use; %d of %d pod addresses in use",
			e.Class, l.InstanceType, l.ENIs+1, l.ENIs, e.InUse, l.Pods())
	}
	if l.Exclusive && l.Members > 0 {
		return trunkLimitMessage(l, e.InUse) // trunk.go
	}
	if l.Exclusive {
		return fmt.Sprintf("node is at its exclusive ENI limit: %s holds %d pods on exclusive ENIs (%d ENIs - the primary); %d in use",
			l.InstanceType, l.Pods(), l.ENIs+1, e.InUse)
	}
	if l.IPv6PerENI > 0 {
		return fmt.Sprintf("node is at its dual-stack pod limit: %s holds %d pods on shared ENIs ((%d ENIs - the primary) x min(%d IPv4, %d IPv6 addresses)); %d in use",
			l.InstanceType, l.Pods(), l.ENIs+1, l.AddrsPerENI, l.IPv6PerENI, e.InUse)
	}
	return fmt.Sprintf("node is at its pod address limit: %s holds %d pods on shared ENIs ((%d ENIs - the primary) x %d addresses); %d in use",
		l.InstanceType, l.Pods(), l.ENIs+1, l.AddrsPerENI, e.InUse)
}
