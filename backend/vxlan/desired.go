package vxlan

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/backend"
)

// Self is what this node contributes to one family's plan: where the entries go and what the kernel said about
// reachability. It holds no handle: Desired is a pure function of Self and the peers.
type Self struct {
	Family        int          // netlink.FAMILY_V4 or netlink.FAMILY_V6
	Device        int          // index of this family's vxlan device
	Ext           int          // index of the external interface (direct routes leave through it)
	Cluster       netip.Prefix // this family's cluster network: direct routes inside it are ours
	DirectRouting bool
	// OnLink answers, for peers' public addresses, whether the kernel reaches them on Ext without a gateway
	// (backend.OnLink). Only read with DirectRouting; a missing address is not on-link.
	OnLink map[netip.Addr]bool
}

// State is one family's desired kernel entries, each list sorted by peer key (the order they are applied in).
type State struct {
	Routes []netlink.Route
	Neigh  []backend.Neigh
	FDB    []backend.FDB
	// Skipped names the peers that got no entries in this family, and why (for the log).
	Skipped []Skip
}

// Skip is a peer left out of a family's plan.
type Skip struct {
	Peer   string
	Reason string
}

// Desired computes the entries of one family from the peers (the other nodes' leases; this node is not among
// them). A peer of another backend type, or without this family's subnet, public address or a valid VtepMAC in
// its BackendData / BackendV6Data, is skipped. Every other peer gets
//
//	route      <subnet> via <subnet address> dev <Device> onlink
//	neighbour  <subnet address> lladdr <VtepMAC>
//	fdb        <VtepMAC> dst <public address>
//
// except that with DirectRouting a peer whose public address is on-link gets only <subnet> via <public> dev
// <Ext>. Should two peers claim one route destination, neighbour address or VtepMAC, the lower peer key keeps it.
func Desired(peers backend.Peers, self Self) State {
	keys := make([]string, 0, len(peers))
	for k := range peers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var st State
	seenDst, seenNeigh, seenMAC := map[netip.Prefix]bool{}, map[netip.Addr]bool{}, map[string]bool{}
	for _, k := range keys {
		l := peers[k]
		if l.Attrs.BackendType != Name {
			st.Skipped = append(st.Skipped, Skip{k, fmt.Sprintf("backend type %q, not %q", l.Attrs.BackendType, Name)})
			continue
		}
		sn, public, raw, field := l.Subnet, l.Attrs.PublicIP, l.Attrs.BackendData, "BackendData"
		fam := "IPv4"
		if self.Family == netlink.FAMILY_V6 {
			sn, public, raw, field = l.IPv6Subnet, l.Attrs.PublicIPv6, l.Attrs.BackendV6Data, "BackendV6Data"
			fam = "IPv6"
		}
		mac, err := vtepMAC(raw)
		switch {
		case !sn.IsValid():
			st.Skipped = append(st.Skipped, Skip{k, "no " + fam + " subnet"})
			continue
		case !public.IsValid():
			st.Skipped = append(st.Skipped, Skip{k, "no " + fam + " public address"})
			continue
		case err != nil:
			st.Skipped = append(st.Skipped, Skip{k, field + ": " + err.Error()})
			continue
		}
		sn = sn.Masked()
		if seenDst[sn] {
			continue
		}
		seenDst[sn] = true
		if self.DirectRouting && self.OnLink[public] {
			st.Routes = append(st.Routes, netlink.Route{Dst: backend.PrefixToIPNet(sn), Gw: net.IP(public.AsSlice()),
				LinkIndex: self.Ext})
			continue
		}
		gw := sn.Addr()
		st.Routes = append(st.Routes, netlink.Route{Dst: backend.PrefixToIPNet(sn), Gw: net.IP(gw.AsSlice()),
			LinkIndex: self.Device, Flags: int(netlink.FLAG_ONLINK)})
		if !seenNeigh[gw] {
			seenNeigh[gw] = true
			st.Neigh = append(st.Neigh, backend.Neigh{IP: gw, MAC: mac})
		}
		if !seenMAC[mac.String()] {
			seenMAC[mac.String()] = true
			st.FDB = append(st.FDB, backend.FDB{MAC: mac, Dst: public})
		}
	}
	return st
}

// Owns tells whether a route of this family is the backend's to manage: any route on the device except the
// kernel's route for the device's own address, and with DirectRouting the gateway routes into the cluster
// network on the external interface.
func (s Self) Owns(r netlink.Route) bool {
	if r.LinkIndex == s.Device {
		return r.Dst != nil && !isOwnAddr(r)
	}
	return s.DirectRouting && r.LinkIndex == s.Ext && r.Gw != nil && backend.InPrefix(r, s.Cluster)
}

// isOwnAddr tells whether r is the kernel's route for the device's own address (not ours to manage).
func isOwnAddr(r netlink.Route) bool {
	return r.Protocol == unix.RTPROT_KERNEL
}

// vtepMAC reads the VtepMAC of a lease's BackendData (or BackendV6Data).
func vtepMAC(raw json.RawMessage) (net.HardwareAddr, error) {
	if len(raw) == 0 {
		return nil, errors.New("empty, expected {\"VNI\":<n>,\"VtepMAC\":\"<mac>\"}")
	}
	var d leaseData
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("not a vxlan lease object: %w", err)
	}
	m, err := net.ParseMAC(d.VtepMAC)
	if err != nil {
		return nil, fmt.Errorf("VtepMAC %q is not a MAC address", d.VtepMAC)
	}
	return m, nil
}
