package hostgw

import (
	"net"
	"net/netip"
	"sort"

	"github.com/vishvananda/netlink"

	"github.com/weftnet/weft/backend"
)

// Self is what this node contributes to one family's plan. It holds no handle: Desired is a pure function of
// Self and the peers.
type Self struct {
	Family  int          // netlink.FAMILY_V4 or netlink.FAMILY_V6
	Ext     int          // index of the external interface, which every route leaves through
	Cluster netip.Prefix // this family's cluster network: gateway routes inside it on Ext are ours
	// OnLink answers, for peers' public addresses, whether the kernel reaches them on Ext without a gateway
	// (backend.OnLink). A missing address is not on-link.
	OnLink map[netip.Addr]bool
}

// State is one family's desired routes, sorted by peer key, and the peers refused for being off-link.
type State struct {
	Routes []netlink.Route
	// OffLink are peers whose public address is not on the external link: host-gw needs one L2 segment, so
	// they get no route and are reported.
	OffLink []OffLink
}

// OffLink is a refused peer and the gateway it would have needed.
type OffLink struct {
	Peer    string
	Gateway netip.Addr
}

// Desired computes one family's routes from the peers (the other nodes' leases; this node is not among them):
// <subnet> via <public address> dev <Ext> for every host-gw peer with this family's subnet and public address
// whose address is on-link. Peers of another backend type or without the family's data are skipped silently;
// should two peers claim one destination, the lower peer key keeps it.
func Desired(peers backend.Peers, self Self) State {
	keys := make([]string, 0, len(peers))
	for k := range peers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var st State
	seen := map[netip.Prefix]bool{}
	for _, k := range keys {
		l := peers[k]
		if l.Attrs.BackendType != Name {
			continue
		}
		sn, gw := l.Subnet, l.Attrs.PublicIP
		if self.Family == netlink.FAMILY_V6 {
			sn, gw = l.IPv6Subnet, l.Attrs.PublicIPv6
		}
		if !sn.IsValid() || !gw.IsValid() {
			continue
		}
		if !self.OnLink[gw] {
			st.OffLink = append(st.OffLink, OffLink{Peer: k, Gateway: gw})
			continue
		}
		if sn = sn.Masked(); seen[sn] {
			continue
		}
		seen[sn] = true
		st.Routes = append(st.Routes, netlink.Route{Dst: backend.PrefixToIPNet(sn), Gw: net.IP(gw.AsSlice()), LinkIndex: self.Ext})
	}
	return st
}

// Owns tells whether a route of this family is the backend's to manage: a gateway route into the cluster network
// on the external interface.
func (s Self) Owns(r netlink.Route) bool {
	return r.LinkIndex == s.Ext && r.Gw != nil && backend.InPrefix(r, s.Cluster)
}
