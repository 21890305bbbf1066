package sim

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
)

// The fabric's trunk ENIs. A trunk ENI is a veth like any ENI (fabric.go). Its InUse member ENIs ride that
// veth: each of a member's addresses is a host route in the router namespace through the trunk's veth and a
// permanent neighbour entry address -> the member's MAC on it, so the VPC delivers a member's address only to
// the member's MAC on its trunk (the instance takes it with a link of that MAC on the trunk ENI), and the
// member's frames, sent from its MAC on the trunk, reach the VPC through the trunk's router end (proxy ARP for
// the gateway, as for any ENI).
//
// Deviation from the service: the service tags a member's frames on the trunk with the member's VLAN id (802.1Q);
// this fabric tells members apart by their MACs and carries their frames untagged, because the kernels alisim
// runs on here have no 802.1Q support (CONFIG_VLAN_8021Q unset, no bridge VLAN filtering, no tc vlan action).
// The VLAN id exists in the API (Attachment.DeviceIndex of a member), not on the wire.

// memberAddr is one address of a member ENI as the router sees it: on the trunk veth's router end (link index),
// at the member's MAC.
type memberAddr struct {
	link int
	ip   string
	mac  net.HardwareAddr
}

// memberAddrs lists the addresses of the InUse members whose trunk has its veth (f.enis, made by Sync before);
// f.mu is held. A member whose trunk has no veth (its instance has no namespace, or making it failed, reported
// there) is skipped until it has one.
func (f *Fabric) memberAddrs(h *netlink.Handle, members []ENI) ([]memberAddr, []error) {
	var out []memberAddr
	var errs []error
	for _, e := range members {
		trunk, ok := f.enis[e.TrunkID]
		if !ok {
			continue
		}
		l, err := h.LinkByName(trunk.name)
		if err != nil {
			continue
		}
		mac, err := net.ParseMAC(e.MAC)
		if err != nil {
			errs = append(errs, fmt.Errorf("member ENI %s: MAC %q: %w", e.ID, e.MAC, err))
			continue
		}
		for _, a := range append([]string{e.PrimaryIP}, e.Secondary...) {
			out = append(out, memberAddr{link: l.Attrs().Index, ip: a, mac: mac})
		}
	}
	return out, errs
}
