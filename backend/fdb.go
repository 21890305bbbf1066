package backend

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// FDB is a forwarding-database entry on a vxlan device: frames for MAC are encapsulated to Dst.
type FDB struct {
	MAC net.HardwareAddr
	Dst netip.Addr
}

func (f FDB) String() string { return fmt.Sprintf("%s dst %s", f.MAC, f.Dst) }

// zeroMAC is the all-zeros MAC of a vxlan device's default (flooding) entries, which a backend never owns.
const zeroMAC = "00:00:00:00:00:00"

// SyncFDB makes the unicast FDB entries on link match desired exactly. A backend owns every entry on its device
// that has a destination address and a non-zero MAC (one entry per remote: a MAC with several remotes is several
// entries); the all-zeros default entries are left alone. Entries whose MAC is not desired, or whose destination
// differs, are deleted, and missing ones added as "self permanent". A MAC listed twice in desired keeps its first
// destination. Failures are collected, not fatal.
func SyncFDB(h *netlink.Handle, link netlink.Link, desired []FDB) error {
	name, idx := link.Attrs().Name, link.Attrs().Index
	want := map[string]netip.Addr{}
	var order []FDB
	for _, f := range desired {
		if _, dup := want[f.MAC.String()]; dup {
			continue
		}
		want[f.MAC.String()] = f.Dst
		order = append(order, f)
	}
	var errs []error
	current, err := h.NeighList(idx, unix.AF_BRIDGE)
	if err != nil {
		errs = append(errs, fmt.Errorf("list fdb of %s: %w", name, err))
	}
	have := map[string]bool{}
	for _, n := range current {
		if n.HardwareAddr == nil || n.IP == nil || n.HardwareAddr.String() == zeroMAC {
			continue
		}
		dst, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		mac := n.HardwareAddr.String()
		if d, wanted := want[mac]; wanted && d == dst.Unmap() {
			have[mac] = true
			continue
		}
		n := n
		if err := h.NeighDel(&n); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("delete fdb %s dst %s on %s: %w", mac, dst.Unmap(), name, err))
		}
	}
	for _, f := range order {
		if have[f.MAC.String()] {
			continue
		}
		n := &netlink.Neigh{LinkIndex: idx, Family: unix.AF_BRIDGE, State: netlink.NUD_PERMANENT, Flags: netlink.NTF_SELF,
			IP: net.IP(f.Dst.AsSlice()), HardwareAddr: f.MAC}
		if err := h.NeighSet(n); err != nil {
			errs = append(errs, fmt.Errorf("set fdb %s dst %s on %s: %w", f.MAC, f.Dst, name, err))
		}
	}
	return errors.Join(errs...)
}
