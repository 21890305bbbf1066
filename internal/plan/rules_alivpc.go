package plan

import (
	"fmt"
	"net/netip"
)

// cloudReserved is where a VPC route destination may not point (InvalidCidrBlock).
var cloudReserved = netip.MustParsePrefix("100.64.0.0/10")

// aliVPC adds ali-vpc's limits to the overlay's: one route entry per node and family in one VPC route table,
// and destinations the VPC refuses.
func aliVPC(in Input, b *builder, fams []family) {
	if !in.VPCCIDR.IsValid() {
		b.warn("NoVPC", "no --vpc-cidr: ali-vpc runs only in an Alibaba Cloud VPC, and overlaps with it were not checked")
	}
	for _, f := range fams {
		if f.prefix.Overlaps(cloudReserved) {
			b.err("PodCIDRReserved", "the pod CIDR %s overlaps %s, which a VPC route may not point into (InvalidCidrBlock)", f.prefix, cloudReserved)
		}
		for _, sw := range append(append([]netip.Prefix(nil), in.VSwitchCIDRs...), in.PodVSwitchCIDRs...) {
			if f.prefix.Overlaps(sw) {
				b.err("PodCIDROverlapsVSwitch", "the pod CIDR %s overlaps the vSwitch %s: a route entry may not point into a vSwitch (InvalidCidrBlock)", f.prefix, sw)
			}
		}
	}
	perNode := len(fams) // one entry per family and node, all in the same table
	free := in.Quota - in.EntriesUsed
	nodes := int64(free / max(perNode, 1))
	detail := fmt.Sprintf("%d custom entries per route table, %d taken by others: one entry per node", in.Quota, in.EntriesUsed)
	if perNode > 1 {
		detail = fmt.Sprintf("%d custom entries per route table, %d taken by others: %d entries (IPv4 and IPv6) per node", in.Quota, in.EntriesUsed, perNode)
	}
	b.limit(LimitRouteTableQuota, "cluster", nodes, "%s", detail)
	// Nodes is at most MaxCount (normalise), so the entries needed fit an int64 without saturating.
	need := mul(int64(in.Nodes), int64(perNode)) + int64(in.EntriesUsed)
	if in.Nodes > 0 && int64(in.Nodes) > nodes {
		fix := fmt.Sprintf("ask for a quota of at least %d (at most %d), or use eni", need, MaxQuota)
		if need > MaxQuota {
			fix = fmt.Sprintf("even the largest quota (%d) is too small: use eni or vxlan", MaxQuota)
		}
		b.err("NodesOverQuota", "%d nodes expected but the route table has room for %d: %s", in.Nodes, nodes, fix)
	} else if in.Nodes > 0 && float64(need) >= 0.8*float64(in.Quota) {
		b.warn("QuotaNearlyFull", "%d nodes use %d of %d route entries (80 %% is weft quota's warning threshold)",
			in.Nodes, need, in.Quota)
	}
}
