// Package reconcile decides, without any I/O, what weftd's address pool starts from and what its garbage
// collectors may free.
//
// Three truths. At start-up weftd holds three accounts of the node's secondary addresses, each authoritative for
// something different and each possibly stale or wrong:
//   - the checkpoint (internal/eni/checkpoint): which pod was given which address, written before the CNI answer,
//     so it may name an allocation the pod never received but never misses one a pod did receive;
//   - the cloud (DescribeNetworkInterfaces of this instance's weft-tagged ENIs): which addresses exist and on which
//     ENI; the only truth about existence, but it knows nothing of pods;
//   - the host (the routes of host veths named like datapath.HostVethName): which addresses are wired to a pod
//     right now, whatever any record says.
//
// Reconcile puts them side by side per address. When they agree, the record is adopted as it is. When they
// disagree, the address is quarantined (a Quarantined record whose Reason says how) and a Finding reports it with
// the pod concerned, rather than deciding which truth is wrong. Why quarantine rather than guess: the costs are
// lopsided. An address wrongly kept from the pool costs one address until an operator or the pod's deletion
// clears it; an address wrongly handed out a second time breaks two pods, silently, with nothing on the node
// able to notice (aws/amazon-vpc-cni-k8s#972, #1188, #2110). So no rule here ever turns an address that the
// checkpoint or the host says is in use into an idle one: every such address appears in Outcome.Records, adopted
// or quarantined. Only addresses that nothing claims are idle (absent from Records), and records only disappear
// when what they protect is gone: a Cooldown record, or a Quarantined one of no pod, whose address neither the
// cloud nor the host has any more.
//
// The garbage collectors follow the same bias. Orphans frees an address only when the API no longer has the pod,
// the host has no datapath for it and the record is old enough not to be an ADD in flight. DeletableENIs deletes
// only ENIs that carry this cluster's tag, have been detached for the whole grace period and whose node is gone,
// or is neither being drained nor being deleted; an ENI that cannot be attributed is never deleted.
package reconcile

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/weftnet/weft/internal/eni/checkpoint"
)

// CloudENI is one ENI as the cloud API describes it.
type CloudENI struct {
	ID, MAC, Status string // Status: Available, Attaching, InUse, Detaching, Deleting
	InstanceID      string
	Addrs           []netip.Addr // IPv4, primary first
	Tags            map[string]string
	// Type is the cloud's: Secondary, Trunk or Member (trunk.go); empty reads as Secondary.
	Type string
}

// HostPod is a pod datapath found on the host.
type HostPod struct {
	Veth string     // host-side veth name (datapath.HostVethName of the pod)
	IP   netip.Addr // the /32 route to it
}

// Truths are the three accounts Reconcile compares.
type Truths struct {
	Checkpoint []checkpoint.Record
	Cloud      []CloudENI // this instance's ENIs carrying weft's tags
	Host       []HostPod
	VethName   func(containerID, ifName string) string // datapath.HostVethName; nil: no host veth matches a record
}

// Finding is one disagreement (or one record dropped), for the log and for an Event on the pod or the node.
type Finding struct {
	IP                     netip.Addr
	ContainerID, ENI, Kind string
	Message                string // one sentence naming the address, the ENI and the pod
}

// The kinds of Finding, fit for an Event's reason.
const (
	// KindMoved: the cloud lists a checkpointed pod's address on another ENI than the record's. Quarantined.
	KindMoved = "AddressMoved"
	// KindGone: no ENI of this instance lists a checkpointed pod's address. Quarantined: the pod still uses it.
	KindGone = "AddressGone"
	// KindUnrecorded: the host routes an address to a pod veth that no Assigned record accounts for. Quarantined
	// while that route exists.
	KindUnrecorded = "UnrecordedDatapath"
	// KindConflict: records claim one address (or one pod interface) more than once. The claim the host's veth
	// confirms is kept if there is exactly one; the others are quarantined.
	KindConflict = "AddressConflict"
	// KindDropped: a Cooldown record, or a Quarantined one of no pod, is dropped: its address is gone from the
	// cloud and the host, or (Cooldown) a pod's claim or a later release supersedes it.
	KindDropped = "RecordDropped"
	// KindInvalid: a record that checkpoint.Record.Validate refuses; quarantined if its address is valid, else
	// dropped.
	KindInvalid = "InvalidRecord"
)

// Outcome is the pool's start.
type Outcome struct {
	Records  []checkpoint.Record // adopted Assigned, kept Cooldown, Quarantined (with Reason); sorted by address
	Findings []Finding           // sorted by address
}

// addrInfo is everything the three truths say about one address.
type addrInfo struct {
	recs  []checkpoint.Record
	enis  []string // ENIs the cloud lists it on, in the order listed
	veths []string // host veths routed to it, sorted
}

// Reconcile compares the three truths address by address. The rules, for each address the checkpoint or the host
// mentions (an address only the cloud lists is idle and not in Records):
//   - An Assigned record is adopted when the cloud lists the address on the record's ENI and the host routes the
//     address to no veth but the pod's (none at all is fine: an ADD that crashed before the datapath, which the
//     address GC clears). Listed on another ENI: quarantined (KindMoved), ENI set to where the cloud lists it.
//     Listed nowhere: quarantined (KindGone). Routed to another pod's veth: quarantined (KindUnrecorded).
//   - Two or more Assigned records for one address: the one whose host veth routes it is kept (then judged as
//     above) if there is exactly one; the others, or all when none or several match, are quarantined
//     (KindConflict). Likewise one pod interface in Assigned records of several addresses.
//   - A host datapath with no Assigned record: the address is quarantined (KindUnrecorded), carrying the pod of the
//     Cooldown record whose veth it is, so the pod's DEL or the address GC can clear it (a Quarantined record of
//     that pod keeps the address already, and nothing new is reported).
//   - A Cooldown record is kept while the cloud lists its address (ENI set to where it is listed), the latest
//     release winning if there are several; dropped (KindDropped) when the address is gone or a pod claims it.
//   - A Quarantined record of a pod is kept (the pod's DEL or the address GC clears it, as they would its Assigned
//     record); one of no pod is kept while the cloud lists its address or the host routes it, dropped when neither.
//   - A record checkpoint.Record.Validate refuses is quarantined (KindInvalid), or dropped if its IP is unusable.
//   - A Reserved record (a pod gone for now that keeps its address: no container, no veth) is kept while the cloud
//     lists its address and nothing else claims it (ENI set to where it is listed), the latest release winning
//     over other reservations and over Cooldown records of the address; dropped (KindDropped) when the address is
//     gone, a pod claims it, or the host routes it to a veth (which the rule for a datapath with no claim then
//     quarantines).
//
// Records of the outcome always pass checkpoint.Record.Validate, and no address appears twice among its Assigned
// and Cooldown records.
func Reconcile(t Truths) Outcome {
	r := reconciler{vethName: t.VethName, addrs: map[netip.Addr]*addrInfo{}}
	info := func(a netip.Addr) *addrInfo {
		i := r.addrs[a]
		if i == nil {
			i = &addrInfo{}
			r.addrs[a] = i
		}
		return i
	}
	for _, rec := range t.Checkpoint {
		rec.IP = rec.IP.Unmap() // one form per address, whichever its source used
		if !usable(rec.IP) {
			r.find(rec.IP, rec, KindInvalid, fmt.Sprintf("Checkpoint record of address %s on ENI %s for %s dropped: not a unicast IPv4 address", rec.IP, orNone(rec.ENI), pod(rec)), "")
			continue
		}
		if err := rec.Validate(); err != nil {
			rec = r.invalid(rec, err)
		}
		i := info(rec.IP)
		i.recs = append(i.recs, rec)
	}
	for _, h := range t.Host {
		h.IP = h.IP.Unmap()
		if !usable(h.IP) {
			continue // not an address the pool could ever hand out
		}
		i := info(h.IP)
		if !slices.Contains(i.veths, h.Veth) {
			i.veths = append(i.veths, h.Veth)
		}
	}
	// Cloud addresses matter only for addresses something else mentions.
	for _, e := range t.Cloud {
		if !podENI(e) { // trunk.go: the trunk ENI's addresses are never a pod's
			continue
		}
		for _, a := range e.Addrs {
			if i := r.addrs[a.Unmap()]; i != nil && !slices.Contains(i.enis, e.ID) && validENI(e.ID) {
				i.enis = append(i.enis, e.ID)
			}
		}
	}
	addrs := make([]netip.Addr, 0, len(r.addrs))
	for a, i := range r.addrs {
		slices.Sort(i.veths)
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	for _, a := range addrs {
		r.address(a, r.addrs[a])
	}
	r.onePodOneAddress()
	slices.SortStableFunc(r.findings, func(x, y Finding) int { return x.IP.Compare(y.IP) })
	slices.SortStableFunc(r.out, func(x, y checkpoint.Record) int {
		return cmp.Or(x.IP.Compare(y.IP), cmp.Compare(stateOrder(x.State), stateOrder(y.State)),
			cmp.Compare(x.ContainerID, y.ContainerID), cmp.Compare(x.IfName, y.IfName), cmp.Compare(x.ENI, y.ENI),
			cmp.Compare(x.Reason, y.Reason))
	})
	return Outcome{Records: r.out, Findings: r.findings}
}

type reconciler struct {
	vethName func(containerID, ifName string) string
	addrs    map[netip.Addr]*addrInfo
	out      []checkpoint.Record
	findings []Finding
}

// address applies the rules to one address.
func (r *reconciler) address(a netip.Addr, i *addrInfo) {
	var claims, cools, quar, resv []checkpoint.Record
	for _, rec := range i.recs {
		switch rec.State {
		case checkpoint.Assigned:
			claims = append(claims, rec)
		case checkpoint.Cooldown:
			cools = append(cools, rec)
		case checkpoint.Reserved:
			resv = append(resv, rec)
		default: // Quarantined; invalid records arrive quarantined
			quar = append(quar, rec)
		}
	}
	onCloud := len(i.enis) > 0
	var kept []checkpoint.Record
	if res := r.reservation(a, i, resv, len(claims) > 0); res != nil {
		kept = append(kept, *res)
		for _, c := range cools {
			r.find(a, c, KindDropped, fmt.Sprintf("Cooldown record of address %s on ENI %s (released by %s) dropped: the address is reserved for %s", a, c.ENI, pod(c), pod(*res)), "")
		}
		cools = nil
	}

	if len(claims) > 0 {
		winner, losers := r.pickClaim(a, i, claims)
		kept = append(kept, losers...)
		if winner != nil {
			kept = append(kept, r.judgeClaim(a, i, *winner))
		}
		for _, c := range cools {
			holder := "records of pods"
			if winner != nil {
				holder = pod(*winner)
			}
			r.find(a, c, KindDropped, fmt.Sprintf("Cooldown record of address %s on ENI %s (released by %s) dropped: %s holds the address", a, c.ENI, pod(c), holder), "")
		}
	} else {
		// No claim. Of several Cooldown records the latest release counts.
		var cool *checkpoint.Record
		for k, c := range cools { // ties: by pod, so the input's order does not matter
			if cool == nil || c.ReleasedAt.After(cool.ReleasedAt) ||
				c.ReleasedAt.Equal(cool.ReleasedAt) && cmp.Or(cmp.Compare(c.ContainerID, cool.ContainerID), cmp.Compare(c.IfName, cool.IfName), cmp.Compare(c.ENI, cool.ENI)) < 0 {
				cool = &cools[k]
			}
		}
		for k, c := range cools {
			if &cools[k] != cool {
				r.find(a, c, KindDropped, fmt.Sprintf("Cooldown record of address %s on ENI %s (released by %s) dropped for a later release of the address", a, c.ENI, pod(c)), "")
			}
		}
		switch {
		case cool != nil && len(i.veths) == 0 && onCloud:
			kept = append(kept, *cool)
		case cool != nil && len(i.veths) == 0:
			r.find(a, *cool, KindDropped, fmt.Sprintf("Cooldown record of address %s on ENI %s (released by %s) dropped: no ENI of this instance lists the address", a, cool.ENI, pod(*cool)), "")
		}
		// A host datapath with no claim: quarantined, with the pod of the Cooldown record whose veth it is.
		coolRouted := false
		for _, v := range i.veths {
			if cool != nil && v != "" && r.veth(*cool) == v {
				coolRouted = true
				detail := fmt.Sprintf("Address %s on ENI %s was released by %s, but the host still routes it to that pod's veth %s", a, cool.ENI, pod(*cool), v)
				r.find(a, *cool, KindUnrecorded, detail, "quarantined")
				q := *cool
				q.State, q.Reason = checkpoint.Quarantined, reason(KindUnrecorded, detail)
				quar = append(quar, q)
				continue
			}
			if slices.ContainsFunc(quar, func(q checkpoint.Record) bool { return v != "" && r.veth(q) == v }) {
				continue // that pod's Quarantined record keeps the address from the pool already
			}
			eni := "" // where the cloud lists it, else the first a record names, else none
			if onCloud {
				eni = i.enis[0]
			} else {
				for _, rec := range i.recs {
					if rec.ENI != "" && (eni == "" || rec.ENI < eni) {
						eni = rec.ENI
					}
				}
			}
			q := checkpoint.Record{IP: a, ENI: eni, State: checkpoint.Quarantined}
			detail := fmt.Sprintf("Address %s on ENI %s is routed on this host to veth %s, which no pod's Assigned record accounts for", a, orNone(eni), v)
			r.find(a, q, KindUnrecorded, detail, "quarantined")
			if !slices.ContainsFunc(quar, func(q checkpoint.Record) bool { return q.State == checkpoint.Quarantined }) {
				q.Reason = reason(KindUnrecorded, detail)
				quar = append(quar, q)
			}
		}
		if cool != nil && len(i.veths) > 0 && !coolRouted {
			r.find(a, *cool, KindDropped, fmt.Sprintf("Cooldown record of address %s on ENI %s (released by %s) dropped for the quarantine of the address, which the host routes to another pod's veth", a, cool.ENI, pod(*cool)), "")
		}
	}
	// Quarantined records stay while what they protect exists: a pod's until its DEL or the address GC, one of
	// no pod while the cloud or the host still has the address.
	for _, q := range quar {
		if q.ContainerID != "" || onCloud || len(i.veths) > 0 {
			kept = append(kept, q)
			continue
		}
		r.find(a, q, KindDropped, fmt.Sprintf("Quarantined record of address %s on ENI %s (%s) dropped: neither the cloud nor the host has the address any more", a, orNone(q.ENI), pod(q)), "")
	}
	// Every record kept names the ENI the cloud lists the address on, where it does.
	for k := range kept {
		if onCloud && !slices.Contains(i.enis, kept[k].ENI) {
			kept[k].ENI = i.enis[0]
		}
	}
	r.out = append(r.out, kept...)
}

// pickClaim returns the claim to judge (nil when no claim can be told apart) and the others, quarantined.
func (r *reconciler) pickClaim(a netip.Addr, i *addrInfo, claims []checkpoint.Record) (*checkpoint.Record, []checkpoint.Record) {
	if len(claims) == 1 {
		return &claims[0], nil
	}
	var match []int
	for k, c := range claims {
		if v := r.veth(c); v != "" && slices.Contains(i.veths, v) {
			match = append(match, k)
		}
	}
	var winner *checkpoint.Record
	if len(match) == 1 {
		winner = &claims[match[0]]
	}
	var losers []checkpoint.Record
	for k, c := range claims {
		if winner != nil && k == match[0] {
			continue
		}
		var detail string
		if winner != nil {
			detail = fmt.Sprintf("Address %s on ENI %s is checkpointed for %s and for %s, whose veth the host routes it to, so the former's record", a, c.ENI, pod(c), pod(*winner))
		} else {
			detail = fmt.Sprintf("Address %s on ENI %s is checkpointed for %s and %s, and the host's veths tell none apart, so each record", a, c.ENI, pod(c), others(len(claims)-1))
		}
		losers = append(losers, r.quarantine(a, c, KindConflict, detail))
	}
	return winner, losers
}

// judgeClaim compares one Assigned record with the cloud and the host: adopted, or quarantined with every
// disagreement reported.
func (r *reconciler) judgeClaim(a netip.Addr, i *addrInfo, c checkpoint.Record) checkpoint.Record {
	var reasons []string
	problem := func(kind, detail string) {
		r.find(a, c, kind, detail, "quarantined")
		reasons = append(reasons, reason(kind, detail))
	}
	switch {
	case slices.Contains(i.enis, c.ENI):
	case len(i.enis) > 0:
		problem(KindMoved, fmt.Sprintf("Address %s of %s is listed on ENI %s, not on ENI %s as checkpointed", a, pod(c), strings.Join(i.enis, ", "), c.ENI))
		c.ENI = i.enis[0]
	default:
		problem(KindGone, fmt.Sprintf("Address %s of %s, checkpointed on ENI %s, is listed on no ENI of this instance", a, pod(c), c.ENI))
	}
	own := r.veth(c)
	for _, v := range i.veths {
		if v == "" || v != own {
			problem(KindUnrecorded, fmt.Sprintf("Address %s on ENI %s of %s is routed on this host to veth %s, not to the pod's veth %s", a, c.ENI, pod(c), v, orNone(own)))
		}
	}
	if len(reasons) > 0 {
		c.State, c.Reason = checkpoint.Quarantined, strings.Join(reasons, "; ")
	}
	return c
}

// onePodOneAddress: a pod interface holds one address. When adopted Assigned records give one several, the one
// whose address the host routes to its veth is kept if unique; the others are quarantined.
func (r *reconciler) onePodOneAddress() {
	byPod := map[[2]string][]int{}
	for k, rec := range r.out {
		if rec.State == checkpoint.Assigned {
			key := [2]string{rec.ContainerID, rec.IfName}
			byPod[key] = append(byPod[key], k)
		}
	}
	keys := make([][2]string, 0, len(byPod))
	for key, idx := range byPod {
		if len(idx) > 1 {
			keys = append(keys, key)
		}
	}
	slices.SortFunc(keys, func(x, y [2]string) int { return cmp.Or(cmp.Compare(x[0], y[0]), cmp.Compare(x[1], y[1])) })
	for _, key := range keys {
		idx := byPod[key]
		var match []int
		for _, k := range idx {
			rec := r.out[k]
			if v := r.veth(rec); v != "" && slices.Contains(r.addrs[rec.IP].veths, v) {
				match = append(match, k)
			}
		}
		for _, k := range idx {
			if len(match) == 1 && k == match[0] {
				continue
			}
			rec := r.out[k]
			detail := fmt.Sprintf("Address %s on ENI %s is one of %d addresses checkpointed for %s, and the host does not single it out, so its record", rec.IP, rec.ENI, len(idx), pod(rec))
			r.out[k] = r.quarantine(rec.IP, rec, KindConflict, detail)
		}
	}
}

func (r *reconciler) veth(rec checkpoint.Record) string {
	if r.vethName == nil || rec.ContainerID == "" || rec.IfName == "" {
		return ""
	}
	return r.vethName(rec.ContainerID, rec.IfName)
}

// validENI: an ENI id a record can hold; an ENI the cloud describes with any other id is ignored, as if it did
// not list its addresses (so claims on them are quarantined, never adopted onto a record the pool cannot save).
func validENI(id string) bool {
	return id != "" && checkpoint.Record{IP: netip.AddrFrom4([4]byte{10, 0, 0, 1}), ENI: id, State: checkpoint.Quarantined}.Validate() == nil
}

// usable: an address a record may hold (checkpoint.Record.Validate's rule).
func usable(a netip.Addr) bool { return a.Is4() && a.IsGlobalUnicast() }

func stateOrder(s checkpoint.State) int {
	switch s {
	case checkpoint.Assigned:
		return 0
	case checkpoint.Cooldown:
		return 1
	}
	return 2
}
