package pool

// ENI classes: per-pod vSwitches and security groups.
//
// A pod may ask for ENIs of its own kind, a Class: one of a list of vSwitches with exactly a set of security
// groups. Config.Default is the class of pods that ask for nothing (the net-conf's vswitches and security
// groups); the zero Class matches every ENI, so a pool configured without classes behaves as before classes
// existed. Allocate hands a pod only an address of an ENI its class matches. The warm pool is kept for the
// default class only: a pod of another class that finds nothing idle waits while Plan asks for its address (room
// on a usable ENI of its class, else one new ENI of the class, Plan.Class), and idle addresses of ENIs that are
// not of the default class are released once IdleReclaimAfter (jittered) has passed, as the ceiling of their
// class is zero. ENIs count against one limit, Limits.ENIs, whatever their class: a pod whose class has no ENI
// with room and no ENI slot left on the node gets *LimitError naming its class.

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/weftnet/weft/internal/eni/checkpoint"
)

// Class is the kind of ENI a pod asks for: in one of VSwitches (any when empty) and with exactly the set of
// SecurityGroups (any when empty). The lists are kept as given; Matches and Key do not depend on their order.
type Class struct {
	VSwitches      []string
	SecurityGroups []string
}

// IsZero: the class matches every ENI.
func (c Class) IsZero() bool { return len(c.VSwitches) == 0 && len(c.SecurityGroups) == 0 }

// Matches says whether an ENI is of the class.
func (c Class) Matches(e *ENI) bool {
	if len(c.VSwitches) > 0 && !slices.Contains(c.VSwitches, e.VSwitchID) {
		return false
	}
	return len(c.SecurityGroups) == 0 || sameSet(c.SecurityGroups, e.SecurityGroups)
}

// Key is the class in one string, equal for equal classes whatever the order of their lists.
func (c Class) Key() string {
	v, s := slices.Clone(c.VSwitches), slices.Clone(c.SecurityGroups)
	slices.Sort(v)
	slices.Sort(s)
	return "vswitches=" + strings.Join(slices.Compact(v), ",") + " security-groups=" + strings.Join(slices.Compact(s), ",")
}

// String is the class for messages.
func (c Class) String() string {
	if c.IsZero() {
		return "any ENI"
	}
	return c.Key()
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

// classOf is the class a pod asks for: its own, else the default; p.mu held.
func (p *Pool) classOf(pod Pod) Class {
	if pod.Class != nil {
		return *pod.Class
	}
	return p.cfg.Default
}

// isDefault: the ENI is of the default class (its addresses make the warm pool).
func (p *Pool) isDefault(e *ENI) bool { return e != nil && p.cfg.Default.Matches(e) }

// ownClass: the pod asks for a class other than the default one (by key).
func (p *Pool) ownClass(c Class) bool { return c.Key() != p.cfg.Default.Key() }

// roomFor says whether the node can still get an address for a pod of the class without another pod's release:
// an ENI of the class with room for more addresses or still being set up, an address of one of its ENIs cooling
// down or being released (idle again soon), or an ENI slot left on the node. p.mu held.
func (p *Pool) roomFor(c Class) bool {
	if len(p.enis) < p.cfg.Limits.ENIs {
		return true
	}
	for _, e := range p.enis {
		if !c.Matches(e) {
			continue
		}
		if !e.Usable || len(e.Addrs) < p.cfg.Limits.perENI() {
			return true
		}
		for _, ip := range e.Addrs {
			a := p.addrs[ip]
			if a == nil || a.eni != e.ID {
				continue
			}
			if a.releasing || p.onlyCooling(ip) {
				return true
			}
		}
	}
	return false
}

// onlyCooling: every record of the address is a Cooldown one (it is idle again when they end).
func (p *Pool) onlyCooling(ip netip.Addr) bool {
	rs := p.recs[ip]
	if len(rs) == 0 {
		return false
	}
	for _, r := range rs {
		if r.State != checkpoint.Cooldown {
			return false
		}
	}
	return true
}

// classPlan adds to the plan what the waiting pods of classes other than the default need: room on usable ENIs of
// their class first (the fullest first), then, when the plan creates no ENI yet, one new ENI of the first class
// (by key) still short, while the node has an ENI slot and no ENI is being set up. free is what the node's ENIs
// may still take (Limits.Pods() less the addresses listed). p.mu held.
func (p *Pool) classPlan(pl *Plan, free int) {
	want := map[string]int{}
	classes := map[string]Class{}
	for k, c := range p.waitClass {
		if !p.waiting[k] {
			delete(p.waitClass, k) // no longer waiting: its wait ended by a path that does not know classes
			continue
		}
		want[c.Key()]++
		classes[c.Key()] = c
	}
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, key := range keys {
		c := classes[key]
		need := want[key]
		for _, a := range p.addrs {
			e := p.enis[a.eni]
			if !c.Matches(e) || a.releasing || len(p.recs[a.ip]) > 0 {
				continue
			}
			need-- // idle, or coming on an ENI being set up
		}
		need = min(need, free)
		if need <= 0 {
			continue
		}
		var room []*ENI
		for _, e := range p.enis {
			if e.Usable && c.Matches(e) && len(e.Addrs) < p.cfg.Limits.perENI() {
				room = append(room, e)
			}
		}
		slices.SortFunc(room, func(x, y *ENI) int { return cmp.Or(cmp.Compare(len(y.Addrs), len(x.Addrs)), cmp.Compare(x.ID, y.ID)) })
		for _, e := range room {
			for n := min(p.cfg.Limits.perENI()-len(e.Addrs), need); n > 0 && need > 0; {
				k := min(n, maxPerCall)
				pl.Assign = append(pl.Assign, Assign{ENI: e.ID, N: k})
				n, need, free = n-k, need-k, free-k
			}
		}
		if need <= 0 || pl.CreateENI > 0 || pl.CreateWhole || len(p.enis) >= p.cfg.Limits.ENIs || p.settingUp() {
			continue
		}
		cc := c
		if p.cfg.Limits.Exclusive {
			pl.CreateWhole, pl.Class = true, &cc
		} else if p.cfg.Limits.perENI() >= 2 {
			pl.CreateENI, pl.Class = min(max(need-1, 1), maxPerCall-1, p.cfg.Limits.perENI()-1), &cc
		}
	}
}

// classReclaim adds to the plan the idle addresses of ENIs not of the default class whose jittered
// IdleReclaimAfter has passed (never an ENI's primary; at most ReclaimBatch with what the plan releases already),
// and notes when the next falls due. Nothing while degraded or while a pod waits. p.mu held.
func (p *Pool) classReclaim(pl *Plan, later func(time.Time)) {
	if p.degraded || len(p.waiting) > 0 {
		return
	}
	left := p.cfg.ReclaimBatch
	for _, u := range pl.Unassign {
		left -= len(u.IPs)
	}
	now := p.clk.Now()
	var ripe []*addr
	for _, a := range p.addrs {
		e := p.enis[a.eni]
		if e == nil || p.isDefault(e) || !p.idle(a) || e.Addrs[0] == a.ip {
			continue
		}
		if now.Before(a.due()) {
			later(a.due())
		} else {
			ripe = append(ripe, a)
		}
	}
	slices.SortFunc(ripe, func(x, y *addr) int { return cmp.Or(cmp.Compare(x.eni, y.eni), x.ip.Compare(y.ip)) })
	ripe = ripe[:max(min(len(ripe), left), 0)]
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
}

// ownWaiting counts the waiting pods that ask for a class other than the default. p.mu held.
func (p *Pool) ownWaiting() int {
	n := 0
	for k := range p.waitClass {
		if p.waiting[k] {
			n++
		}
	}
	return n
}

func assigned(as []Assign) int {
	n := 0
	for _, a := range as {
		n += a.N
	}
	return n
}
