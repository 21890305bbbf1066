package sim

// The fabric's IPv6 side (the eni backend's dual stack): an ENI's IPv6 addresses become router host routes (/128)
// to the ENI's veth with permanent neighbour entries at the ENI's MAC, as its IPv4 addresses do, and the
// router-side end of each ENI veth carries its vSwitch's IPv6 gateway (::1 of the block, as /128), so the
// instance resolves the gateway through the ENI as it does on the vSwitch bridge.

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// eniGateway6 is the IPv6 gateway of the ENI's vSwitch without its length ("" when the vSwitch has no IPv6 block).
func (f *Fabric) eniGateway6(e ENI) string {
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	sw := f.w.vswitch(e.VSwitchID)
	if sw == nil {
		return ""
	}
	return strings.Split(gateway6(sw.IPv6CIDR), "/")[0]
}

// syncENIv6 gives the router-side veth of an ENI its vSwitch's IPv6 gateway (idempotent) and adds the ENI's IPv6
// addresses to the host routes and neighbours Sync installs.
func (f *Fabric) syncENIv6(h *netlink.Handle, l netlink.Link, e ENI, addRoute func(dst string), addNeigh func(ip string)) error {
	if len(e.IPv6) == 0 {
		return nil
	}
	gw := f.eniGateway6(e)
	if gw == "" {
		return fmt.Errorf("ENI %s has IPv6 addresses but its vSwitch %s has no IPv6 block", e.ID, e.VSwitchID)
	}
	a, err := netip.ParseAddr(gw)
	if err != nil {
		return err
	}
	want := &netlink.Addr{IPNet: host128Net(a), Flags: unix.IFA_F_NODAD}
	have, err := h.AddrList(l, netlink.FAMILY_V6)
	if err != nil {
		return fmt.Errorf("addresses of %s: %w", l.Attrs().Name, err)
	}
	found := false
	for _, x := range have {
		found = found || x.IPNet.String() == want.IPNet.String()
	}
	if !found {
		f.commands++
		if err := h.AddrAdd(l, want); err != nil {
			return fmt.Errorf("IPv6 gateway %s on %s: %w", gw, l.Attrs().Name, err)
		}
	}
	for _, ip := range e.IPv6 {
		addRoute(ip + "/128")
		addNeigh(ip)
	}
	return nil
}

func host128Net(a netip.Addr) *net.IPNet {
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(128, 128)}
}

// neighFamily is the address family of a neighbour's address.
func neighFamily(ip string) int {
	if strings.Contains(ip, ":") {
		return unix.AF_INET6
	}
	return unix.AF_INET
}

// neighList46 lists a link's IPv4 and IPv6 neighbours.
func neighList46(h *netlink.Handle, idx int) ([]netlink.Neigh, error) {
	v4, err := h.NeighList(idx, unix.AF_INET)
	if err != nil {
		return nil, err
	}
	v6, err := h.NeighList(idx, unix.AF_INET6)
	return append(v4, v6...), err
}
