package datapath

// CHECK's IPv6 part (dual stack): every IPv6 piece Add makes (ipv6.go), on the host and in the pod. Nothing is
// checked for an IPv4-only pod (Pod.IPv6 invalid).

import (
	"bytes"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// checkIPv6Host reports the host's missing or wrong IPv6 pieces of p: the /128 route to the pod through its veth
// in the main table, the permanent neighbour entry of the pod's address at the pod end's MAC (checked in
// checkIPv6Pod, which knows that MAC), both IPv6 rules and IPv6 forwarding.
func checkIPv6Host(badf func(string, ...any), p Pod, h *netlink.Handle, hostLink netlink.Link) {
	if !p.IPv6.IsValid() {
		return
	}
	if hostLink != nil {
		routes, err := h.RouteListFiltered(netlink.FAMILY_V6, &netlink.Route{Dst: host128(p.IPv6), Table: unix.RT_TABLE_MAIN},
			netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
		found := false
		for _, r := range routes {
			found = found || r.LinkIndex == hostLink.Attrs().Index && r.Gw == nil
		}
		if err != nil || !found {
			badf("host route %s/128 dev %s: missing (found %v, err %v)", p.IPv6, hostLink.Attrs().Name, routes, err)
		}
	}
	rules, err := h.RuleList(netlink.FAMILY_V6)
	if err != nil {
		badf("list IPv6 rules: %v", err)
	}
	checkRules(badf, rules, p.Rules, p.IPv6, p.Table)
	if v, err := readSysctl(sysctlPath("ipv6", "conf", "all", "forwarding")); err != nil || v != "1" {
		badf("net.ipv6.conf.all.forwarding: %q (err %v), want 1", v, err)
	}
}

// checkIPv6Pod reports the pod's missing or wrong IPv6 pieces: its address as /128 on the interface, the default
// route via GatewayV6 on-link, GatewayV6's permanent neighbour entry at the host veth's MAC; and the host's
// permanent neighbour entry of the pod's address at the pod end's MAC.
func checkIPv6Pod(badf func(string, ...any), p Pod, h, ph *netlink.Handle, podLink, hostLink netlink.Link) {
	if !p.IPv6.IsValid() {
		return
	}
	addrs, err := ph.AddrList(podLink, netlink.FAMILY_V6)
	found := false
	for _, a := range addrs {
		ip, ok := addr128(a.IPNet)
		found = found || ok && ip == p.IPv6
	}
	if err != nil || !found {
		badf("pod IPv6 address %s/128 on %s: missing (found %v, err %v)", p.IPv6, p.IfName, addrs, err)
	}
	gw := net.IP(gatewayV6.AsSlice())
	routes, err := ph.RouteList(podLink, netlink.FAMILY_V6)
	found = false
	for _, r := range routes {
		found = found || r.Table == unix.RT_TABLE_MAIN && isDefault(r.Dst) && r.Gw.Equal(gw)
	}
	if err != nil || !found {
		badf("pod IPv6 default route via %s dev %s: missing (err %v)", GatewayV6, p.IfName, err)
	}
	neighs, err := ph.NeighList(podLink.Attrs().Index, netlink.FAMILY_V6)
	found = false
	for _, n := range neighs {
		found = found || n.IP.Equal(gw) && n.State&netlink.NUD_PERMANENT != 0 && hostLink != nil &&
			bytes.Equal(n.HardwareAddr, hostLink.Attrs().HardwareAddr)
	}
	if err != nil || !found {
		badf("pod neighbour %s lladdr <host veth MAC> permanent on %s: missing (found %v, err %v)", GatewayV6, p.IfName, neighs, err)
	}
	if hostLink == nil {
		return
	}
	// The host side's neighbour names the pod end's MAC, known here.
	hn, err := h.NeighList(hostLink.Attrs().Index, netlink.FAMILY_V6)
	found = false
	for _, n := range hn {
		found = found || n.IP.Equal(net.IP(p.IPv6.AsSlice())) && n.State&netlink.NUD_PERMANENT != 0 &&
			bytes.Equal(n.HardwareAddr, podLink.Attrs().HardwareAddr)
	}
	if err != nil || !found {
		badf("host neighbour %s lladdr <pod MAC> permanent on %s: missing (found %v, err %v)", p.IPv6, hostLink.Attrs().Name, hn, err)
	}
}
