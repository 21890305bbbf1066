package plugin

import (
	"net"
	"net/netip"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/weftnet/weft/internal/eni/datapath"
)

// addIPv6Result adds a dual-stack pod's IPv6 address (ipv6/128 via fe80::1 on the pod's interface) and the IPv6
// default route to ADD's result; nothing when the pod has no IPv6 address.
func addIPv6Result(r *current.Result, ipv6 netip.Addr) {
	if !ipv6.IsValid() {
		return
	}
	gw := net.ParseIP(datapath.GatewayV6)
	podIf := 1
	r.IPs = append(r.IPs, &current.IPConfig{Interface: &podIf,
		Address: net.IPNet{IP: net.IP(ipv6.AsSlice()), Mask: net.CIDRMask(128, 128)}, Gateway: gw})
	r.Routes = append(r.Routes, &types.Route{Dst: net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}, GW: gw})
}
