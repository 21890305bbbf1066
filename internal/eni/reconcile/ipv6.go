package reconcile

// Dual stack: Reconcile judges each record by its IPv4 address; ReconcileIPv6 then compares the records' IPv6
// partners (checkpoint.Record.IPv6) with what the cloud lists on the ENIs and what the host routes to pod veths,
// with the same bias. An adopted pod whose IPv6 address the cloud lists on no ENI of the instance, on another ENI
// than the record's, or that the host routes to another pod's veth is quarantined (its IPv4 address with it: the
// pod still uses both). A Cooldown or Reserved record whose IPv6 partner the cloud no longer lists on its ENI
// loses the partner (the pool pairs the IPv4 address with a free one again when it hands it out); its IPv4 address
// is judged as before. An IPv6 address the host routes to a veth that no record holds is given to the Quarantined
// record of that veth when there is one (so the pool never pairs it with another pod), else reported.

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/weftnet/weft/internal/eni/checkpoint"
)

// Truths6 is the IPv6 side of the cloud's and the host's accounts.
type Truths6 struct {
	Cloud map[string][]netip.Addr // ENI id -> the IPv6 addresses the cloud lists on it
	Host  []HostPod               // the /128 routes of the host's pod veths (HostPod.IP an IPv6 address)
}

// ReconcileIPv6 applies the IPv6 rules to Reconcile's outcome (pure); vethName as Truths.VethName. With no
// record holding an IPv6 address and no IPv6 route on the host it returns out unchanged.
func ReconcileIPv6(out Outcome, t Truths6, vethName func(containerID, ifName string) string) Outcome {
	r := reconciler{vethName: vethName}
	listed := map[netip.Addr][]string{}
	for id, ips := range t.Cloud {
		for _, a := range ips {
			listed[a] = append(listed[a], id)
		}
	}
	for _, ids := range listed {
		slices.Sort(ids)
	}
	routed := map[netip.Addr][]string{}
	for _, h := range t.Host {
		if h.IP.Is6() && !slices.Contains(routed[h.IP], h.Veth) {
			routed[h.IP] = append(routed[h.IP], h.Veth)
		}
	}
	held := map[netip.Addr]bool{}
	recs := slices.Clone(out.Records)
	for i := range recs {
		rec := recs[i]
		if !rec.IPv6.IsValid() {
			continue
		}
		held[rec.IPv6] = true
		enis := listed[rec.IPv6]
		switch rec.State {
		case checkpoint.Assigned:
			own := r.veth(rec)
			stray := slices.DeleteFunc(slices.Clone(routed[rec.IPv6]), func(v string) bool { return v == own })
			switch {
			case len(enis) == 0:
				recs[i] = r.quarantine(rec.IP, rec, KindGone, fmt.Sprintf("IPv6 address %s of %s (paired with %s on ENI %s) is on no ENI of this instance: the pair",
					rec.IPv6, pod(rec), rec.IP, orNone(rec.ENI)))
			case !slices.Contains(enis, rec.ENI):
				recs[i] = r.quarantine(rec.IP, rec, KindMoved, fmt.Sprintf("IPv6 address %s of %s is on ENI %s, its IPv4 partner %s on ENI %s: the pair",
					rec.IPv6, pod(rec), enis[0], rec.IP, orNone(rec.ENI)))
			case len(stray) > 0:
				recs[i] = r.quarantine(rec.IP, rec, KindUnrecorded, fmt.Sprintf("IPv6 address %s of %s is routed on the host to %s too: the pair with %s",
					rec.IPv6, pod(rec), stray[0], rec.IP))
			}
		case checkpoint.Cooldown, checkpoint.Reserved:
			if !slices.Contains(enis, rec.ENI) {
				r.find(rec.IP, rec, KindDropped, fmt.Sprintf("IPv6 address %s, paired with %s on ENI %s, is gone from that ENI in the cloud",
					rec.IPv6, rec.IP, orNone(rec.ENI)), "the record keeps its IPv4 address without it")
				recs[i].IPv6 = netip.Addr{}
				delete(held, rec.IPv6)
			}
		}
	}
	// IPv6 datapaths no record accounts for.
	byVeth := map[string]int{}
	for i, rec := range recs {
		if v := r.veth(rec); v != "" && rec.State == checkpoint.Quarantined && !rec.IPv6.IsValid() {
			byVeth[v] = i
		}
	}
	addrs := make([]netip.Addr, 0, len(routed))
	for a := range routed {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	for _, a := range addrs {
		if held[a] || !a.IsGlobalUnicast() {
			continue
		}
		veths := routed[a]
		slices.Sort(veths)
		if i, ok := byVeth[veths[0]]; ok && len(listed[a]) > 0 {
			recs[i].IPv6 = a
			held[a] = true
			delete(byVeth, veths[0])
			r.find(recs[i].IP, recs[i], KindUnrecorded, fmt.Sprintf("IPv6 address %s is routed on the host to %s, which no Assigned record accounts for", a, veths[0]),
				fmt.Sprintf("kept with the quarantined %s", recs[i].IP))
			continue
		}
		r.findOnly(netip.Addr{}, checkpoint.Record{}, KindUnrecorded, fmt.Sprintf("IPv6 address %s is routed on the host to %s, which no record accounts for; nothing holds it from the pool.",
			a, veths[0]))
	}
	out.Records = recs
	out.Findings = append(slices.Clone(out.Findings), r.findings...)
	slices.SortStableFunc(out.Findings, func(x, y Finding) int { return x.IP.Compare(y.IP) })
	return out
}
