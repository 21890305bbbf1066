package plan

import "fmt"

// eni sizes the ENI modes, which take pod addresses from vSwitches instead of a pod CIDR: the instance type
// bounds pods per node, the vSwitch address pool bounds the nodes.
func eni(in Input, b *builder, backend string) {
	if len(in.InstanceTypes) == 0 {
		b.err("InstanceTypeRequired", "%s sizes pods per node from the instance type: set --instance-type", backend)
		return
	}
	if !in.VPCCIDR.IsValid() {
		b.err("VPCRequired", "%s gives pods VPC addresses: set --vpc-cidr and the vSwitches", backend)
	}
	if len(in.PodCIDRs) > 0 {
		b.warn("PodCIDRUnused", "%s does not use --pod-cidr: pods take addresses of the vSwitches", backend)
	}
	// The smallest type binds pods per node; the largest binds how many nodes the vSwitches can fill.
	var smallest, largest instanceType
	pods := func(t instanceType) int64 {
		if backend == ENI {
			return int64(t.SharedENIPods())
		}
		return int64(t.ExclusiveENIPods())
	}
	for i, t := range in.InstanceTypes {
		if i == 0 || pods(t) < pods(smallest) {
			smallest = t
		}
		if i == 0 || pods(t) > pods(largest) {
			largest = t
		}
	}
	if backend == ENI {
		b.limit(LimitAddressesPerENI, "node", pods(smallest), "%s: (%d ENIs - the primary) x %d addresses per ENI",
			smallest.ID, smallest.ENIs, smallest.IPv4PerENI)
	} else {
		b.limit(LimitENICount, "node", pods(smallest), "%s: %d ENIs - the primary, one per pod", smallest.ID, smallest.ENIs)
	}
	if pods(smallest) == 0 {
		b.err("NoENIPods", "%s has no secondary ENI, so it cannot hold %s pods", smallest.ID, backend)
	}
	if in.MaxPods > 0 {
		b.limit(LimitMaxPods, "node", int64(in.MaxPods), "kubelet --max-pods")
	}
	sws, shared := in.PodVSwitchCIDRs, false
	if len(sws) == 0 {
		sws, shared = in.VSwitchCIDRs, true
	}
	if len(sws) == 0 {
		if in.VPCCIDR.IsValid() {
			b.warn("VSwitchesUnknown", "no --vswitch-cidr or --pod-vswitch-cidr: the vSwitch address pool was not checked")
		}
		return
	}
	var addrs int64
	for _, sw := range sws {
		addrs += pow2(32-sw.Bits()) - VSwitchReserved
	}
	perNode := pods(largest)
	if in.MaxPods > 0 {
		perNode = min(perNode, int64(in.MaxPods))
	}
	what := fmt.Sprintf("%d pod addresses", perNode)
	if shared {
		perNode++ // the node's own primary address comes from the same vSwitches
		what += " and its primary address"
	}
	nodes := addrs / max(perNode, 1)
	b.limit(LimitVSwitchAddresses, "cluster", nodes, "%d vSwitch addresses (%d reserved in each of %d): a full %s node takes %s",
		addrs, VSwitchReserved, len(sws), largest.ID, what)
	if in.Nodes > 0 && int64(in.Nodes) > nodes {
		b.err("VSwitchAddressesExhausted", "%d full nodes need %s addresses but the vSwitches have %d: add pod vSwitches",
			in.Nodes, count(mul(int64(in.Nodes), perNode)), addrs)
	}
}
