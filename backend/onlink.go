package backend

import (
	"net"
	"net/netip"
	"sort"

	"github.com/vishvananda/netlink"
)

// OnLink reads from the kernel which of addrs are reachable directly on the interface with index ext: the
// kernel's route to the address has no gateway and leaves through ext. It is the observed input the overlay
// backends' pure planners take (host-gw refuses an off-link peer, vxlan's DirectRouting bypasses encapsulation
// for an on-link one). An address the kernel cannot route is not on-link.
func OnLink(h *netlink.Handle, ext int, addrs []netip.Addr) map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	for _, a := range addrs {
		if _, done := out[a]; done {
			continue
		}
		rs, err := h.RouteGet(net.IP(a.AsSlice()))
		out[a] = err == nil && len(rs) > 0 && rs[0].Gw == nil && rs[0].LinkIndex == ext
	}
	return out
}

// PublicAddrs lists the peers' valid public addresses of one family (netlink.FAMILY_V4 or FAMILY_V6), sorted:
// what OnLink must be asked about before planning.
func PublicAddrs(peers Peers, family int) []netip.Addr {
	var out []netip.Addr
	for _, l := range peers {
		a := l.Attrs.PublicIP
		if family == netlink.FAMILY_V6 {
			a = l.Attrs.PublicIPv6
		}
		if a.IsValid() {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out
}
