package plan

import (
	"fmt"
	"math/bits"
)

// vxlanOverhead is the bytes of outer IPv4, UDP and VXLAN headers on every pod packet.
const vxlanOverhead = 50

// overlay sizes the backends that give each node a subnet of the pod CIDR (vxlan, host-gw, ali-vpc): the node
// subnets bound the nodes and the addresses of one subnet bound its pods.
func overlay(in Input, b *builder, backend string) {
	fams := podFamilies(in)
	if len(fams) == 0 {
		b.err("PodCIDRRequired", "%s gives each node a subnet of the pod CIDR: set --pod-cidr", backend)
		return
	}
	for _, f := range fams {
		b.r.Errors = append(b.r.Errors, f.problems...)
		if len(f.problems) > 0 {
			continue
		}
		how := "kube-controller-manager hands out every one"
		if in.SubnetManager == SubnetManagerEtcd {
			how = "flannel's etcd allocator skips the first"
		}
		excluded := "network and gateway"
		if f.prefix.Addr().Is4() {
			excluded = "network, gateway and broadcast"
		}
		b.limit(LimitSubnetAddresses, "node", f.perNode, "a /%d node subnet holds %s pod addresses (%s excluded)",
			f.slen, count(f.perNode), excluded)
		b.limit(LimitSubnets, "cluster", f.subnets, "%s cut into /%d node subnets gives %s (%s)", f.prefix, f.slen, count(f.subnets), how)
		if in.Nodes > 0 && int64(in.Nodes) > f.subnets {
			b.err("PodCIDRTooSmall", "%d nodes expected but %s cut into /%d gives %s node subnets: %s",
				in.Nodes, f.prefix, f.slen, count(f.subnets), podCIDRFix(in, f))
		}
	}
	if in.MaxPods > 0 {
		b.limit(LimitMaxPods, "node", int64(in.MaxPods), "kubelet --max-pods")
	}
	switch backend {
	case VXLAN:
		if in.VPCCIDR.IsValid() {
			b.warn("Encapsulation", "every pod packet carries %d bytes of VXLAN headers and the pod MTU is that much below the VPC's", vxlanOverhead)
		}
	case HostGW:
		if in.VPCCIDR.IsValid() {
			b.err("HostGWNeedsL2", "an Alibaba Cloud VPC forwards only to vSwitch addresses and route entries, so pod packets sent by host-gw's next-hop routes are dropped: use ali-vpc")
		} else if !in.L2Adjacent {
			b.warn("HostGWNeedsL2", "host-gw needs every node on one L2 segment; pass --l2-adjacent when they are")
		}
	case AliVPC:
		aliVPC(in, b, fams)
	}
}

// podCIDRFix says which pod CIDR would hold the expected nodes, or why none can: the node subnets cannot be
// shorter than the pod CIDR, and kube-controller-manager cuts at most 2^16 of them.
func podCIDRFix(in Input, f family) string {
	need := uint64(in.Nodes)
	if in.SubnetManager == SubnetManagerEtcd {
		need++ // the first subnet is skipped
	}
	nbits := bits.Len64(need - 1) // the subnet bits that number need subnets
	switch {
	case in.SubnetManager == SubnetManagerKube && nbits > nodeIPAMMaxDiff:
		return fmt.Sprintf("kube-controller-manager cuts at most %s node subnets from one cluster CIDR: split the nodes over clusters", count(pow2(nodeIPAMMaxDiff)))
	case nbits >= f.slen: // a /0 pod CIDR is the whole address space, never a fix
		return fmt.Sprintf("no pod CIDR cut into /%d holds that many: use a longer node subnet", f.slen)
	}
	return fmt.Sprintf("use a /%d pod CIDR or a longer node subnet", f.slen-nbits)
}
