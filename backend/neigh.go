package backend

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Neigh is a permanent neighbour (ARP / NDP) entry a backend wants on its device: IP resolves to MAC.
type Neigh struct {
	IP  netip.Addr
	MAC net.HardwareAddr
}

func (n Neigh) String() string { return fmt.Sprintf("%s lladdr %s", n.IP, n.MAC) }

// SyncNeigh makes the permanent neighbours of one family on link match desired exactly. A backend owns every
// permanent entry of that family on its device and nothing else: entries the kernel resolved itself (reachable,
// stale, noarp, ...) are left alone unless their address is desired, in which case they become the permanent
// entry. Missing or different entries are set (NeighSet replaces), stale permanent ones deleted. An address listed
// twice in desired keeps its first MAC. Failures are collected, not fatal: one bad entry does not block the rest.
func SyncNeigh(h *netlink.Handle, link netlink.Link, family int, desired []Neigh) error {
	name, idx := link.Attrs().Name, link.Attrs().Index
	want := map[netip.Addr]net.HardwareAddr{}
	var order []netip.Addr
	for _, n := range desired {
		if _, dup := want[n.IP]; dup {
			continue
		}
		want[n.IP] = n.MAC
		order = append(order, n.IP)
	}
	var errs []error
	current, err := h.NeighList(idx, family)
	if err != nil {
		// A partial (interrupted) dump still lets us delete what it shows; every desired entry is set below anyway.
		errs = append(errs, fmt.Errorf("list neighbours of %s: %w", name, err))
	}
	have := map[netip.Addr]bool{}
	for _, n := range current {
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		mac, wanted := want[ip]
		permanent := n.State&netlink.NUD_PERMANENT != 0
		if wanted && permanent && n.HardwareAddr.String() == mac.String() {
			have[ip] = true
			continue
		}
		if !permanent || wanted {
			continue // not ours, or replaced below
		}
		n := n
		if err := h.NeighDel(&n); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("delete neighbour %s on %s: %w", ip, name, err))
		}
	}
	for _, ip := range order {
		if have[ip] {
			continue
		}
		n := &netlink.Neigh{LinkIndex: idx, Family: family, State: netlink.NUD_PERMANENT, Type: unix.RTN_UNICAST,
			IP: net.IP(ip.AsSlice()), HardwareAddr: want[ip]}
		if err := h.NeighSet(n); err != nil {
			errs = append(errs, fmt.Errorf("set neighbour %s lladdr %s on %s: %w", ip, want[ip], name, err))
		}
	}
	return errors.Join(errs...)
}
