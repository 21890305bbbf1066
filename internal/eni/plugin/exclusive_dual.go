package plugin

// Exclusive ENI mode with dual stack: weftd's reply carries the ENI's IPv6 address, the vSwitch's IPv6 block and
// gateway and the IPv6 host routes; the plugin hands them to datapath.AddExclusive (the address with the block's
// prefix length on eth0, the default route via the gateway), keeps them in the state file for CHECK, and lists
// both families in the CNI result.

import (
	"net"
	"net/netip"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/weftnet/weft/internal/eni/cniproto"
	"github.com/weftnet/weft/internal/eni/datapath"
)

// exclusiveV6 is the IPv6 part of exclusiveState; zero when IPv4 only.
type exclusiveV6 struct {
	IPv6        netip.Addr     `json:",omitzero"`
	IPv6Bits    int            `json:",omitempty"`
	IPv6Gateway netip.Addr     `json:",omitzero"`
	HostRoutes6 []netip.Prefix `json:",omitempty"`
}

func exclusiveV6Of(r cniproto.AddReply) exclusiveV6 {
	if !r.IPv6.IsValid() {
		return exclusiveV6{}
	}
	return exclusiveV6{IPv6: r.IPv6, IPv6Bits: r.ENI.VSwitchIPv6CIDR.Bits(), IPv6Gateway: r.ENI.IPv6Gateway, HostRoutes6: r.HostRoutes6}
}

func (x exclusiveV6) apply(p *datapath.ExclusivePod) {
	p.IPv6, p.IPv6Bits, p.IPv6Gateway, p.HostRoutes6 = x.IPv6, x.IPv6Bits, x.IPv6Gateway, x.HostRoutes6
}

// addExclusiveIPv6Result adds the pod's IPv6 address (with the block's prefix length, via the vSwitch's IPv6
// gateway on the ENI) and the IPv6 default route to ADD's result; nothing without an IPv6 address.
func addExclusiveIPv6Result(r *current.Result, reply cniproto.AddReply) {
	if !reply.IPv6.IsValid() {
		return
	}
	gw := net.IP(reply.ENI.IPv6Gateway.AsSlice())
	podIf := 1
	r.IPs = append(r.IPs, &current.IPConfig{Interface: &podIf, Gateway: gw,
		Address: net.IPNet{IP: net.IP(reply.IPv6.AsSlice()), Mask: net.CIDRMask(reply.ENI.VSwitchIPv6CIDR.Bits(), 128)}})
	r.Routes = append(r.Routes, &types.Route{Dst: net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}, GW: gw})
}
