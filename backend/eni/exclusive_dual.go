package eni

// Dual stack in exclusive ENI mode (ip_stack "dual" with Mode "exclusive"): the pod's ENI carries one IPv6
// address beside its primary IPv4 one. The pool's unit stays the ENI: Limits.IPv6PerENI is 1, so the pool
// creates each ENI with Ipv6AddressCount 1 (Limits.NewENIIPv6), assigns one (AssignIpv6Addresses) to an adopted
// ENI that has none (its plan keeps each idle ENI's free IPv6 address level with its idle IPv4 one), pairs the
// pod's record with it, and the address goes with the ENI when the ENI is deleted. The capacity stays
// EniQuantity - 1. The ADD reply carries the address, the vSwitch's IPv6 block and gateway (dualReply); the
// plugin puts the address with the block's prefix length on the pod's eth0, as an ECS instance's own ENI has it
// (datapath/exclusive_v6.go).

import (
	"context"
	"net/netip"

	"github.com/weftnet/weft/cloud/aliyun"

	"github.com/weftnet/weft/internal/eni/cniproto"
)

// exclusiveIPv6PerENI is the IPv6 addresses an exclusive ENI takes: the pod's one.
const exclusiveIPv6PerENI = 1

// exclusiveHostRoutes6 are the IPv6 prefixes an exclusive dual-stack pod reaches through its second veth: the
// node's IPv6 address when it has one (none: the pod reaches the node over IPv4 only).
func exclusiveHostRoutes6(node netip.Addr) []netip.Prefix {
	if !node.Is6() || node.Is4In6() || !node.IsGlobalUnicast() {
		return nil
	}
	return []netip.Prefix{netip.PrefixFrom(node.WithZone(""), 128)}
}

// exclusiveDualReply adds the exclusive pod's IPv6 host routes (after dualReply); nothing in shared mode or
// without an IPv6 address.
func (n *Network) exclusiveDualReply(r *cniproto.AddReply) {
	if !n.exclusive || !r.IPv6.IsValid() {
		return
	}
	r.HostRoutes6 = exclusiveHostRoutes6(n.nodeIPv6())
}

// nodeIPv6 is the node's IPv6 address (its interface's), invalid when it has none.
func (n *Network) nodeIPv6() netip.Addr {
	if x := n.d.deps.ExtIface; x != nil {
		return x.IfaceV6
	}
	return netip.Addr{}
}

// heldIPv6 notes the IPv6 gateway and block of an exclusive ENI inside its pod (after a restart the host holds
// no table of it to set up); nothing when IPv4 only.
func (n *Network) heldIPv6(ctx context.Context, st *eniState, sw aliyun.VSwitch) {
	if n.limits.IPv6PerENI == 0 {
		return
	}
	if gw := n.gateway6(ctx, st.MAC, sw.IPv6CIDR); gw.IsValid() {
		n.mu.Lock()
		st.gateway6, st.cidr6 = gw, sw.IPv6CIDR.Masked()
		n.mu.Unlock()
	}
}
