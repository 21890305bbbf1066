package datapath

// Trunk member ENIs: a member ENI has no NIC of its own on the host; its frames travel on its trunk ENI's
// interface. EnsureMemberLink makes, in the current (host) namespace, a link on the trunk's interface (found by
// its MAC) that carries the member's MAC: with MemberVLAN an 802.1Q sub-interface with the member's VLAN id (the
// service's trunking, as Terway does it), with MemberMACVLAN a macvlan (untagged, told apart by MAC: alisim's
// fabric on kernels without 802.1Q, see cloud/aliyun/sim/fabric_trunk.go). The link then looks like any ENI to
// AddExclusive, which finds it by the member's MAC and moves it into the pod as its eth0; DelExclusive brings it
// back and DeleteMemberLink removes it. Both are idempotent.

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// How a member ENI's link is made on its trunk.
const (
	MemberVLAN    = "vlan"
	MemberMACVLAN = "macvlan"
)

// MemberLink is a member ENI's link on its trunk ENI's interface.
type MemberLink struct {
	TrunkMAC net.HardwareAddr // the trunk ENI's
	MAC      net.HardwareAddr // the member ENI's
	VLAN     int              // the member's VLAN id, 1..4094
	Kind     string           // MemberVLAN or MemberMACVLAN
}

// MemberLinkName is the host name of the member link of VLAN vlan (one trunk per instance: unique on the host).
func MemberLinkName(vlan int) string { return fmt.Sprintf("weftm%d", vlan) }

func (m MemberLink) validate() error {
	switch {
	case len(m.TrunkMAC) != 6:
		return fmt.Errorf("member link: TrunkMAC %q: expected a 6-byte MAC", m.TrunkMAC)
	case len(m.MAC) != 6 || m.MAC[0]&1 != 0:
		return fmt.Errorf("member link: MAC %q: expected a 6-byte unicast MAC", m.MAC)
	case m.VLAN < 1 || m.VLAN > 4094:
		return fmt.Errorf("member link: VLAN %d: expected 1..4094", m.VLAN)
	case m.Kind != MemberVLAN && m.Kind != MemberMACVLAN:
		return fmt.Errorf("member link: Kind %q: expected %q or %q", m.Kind, MemberVLAN, MemberMACVLAN)
	}
	return nil
}

// EnsureMemberLink makes the member's link on the host (see the file comment) and returns its name; a link with
// the member's MAC already there (made before, or back from a pod) is kept.
func EnsureMemberLink(m MemberLink) (string, error) {
	if err := m.validate(); err != nil {
		return "", err
	}
	h, err := netlink.NewHandle()
	if err != nil {
		return "", err
	}
	defer h.Close()
	if l, err := linkByMAC(h, m.MAC); err == nil {
		return l.Attrs().Name, nil
	}
	trunk, err := linkByMAC(h, m.TrunkMAC)
	if err != nil {
		return "", fmt.Errorf("member link: the trunk ENI: %w", err)
	}
	la := netlink.NewLinkAttrs()
	la.Name, la.ParentIndex, la.HardwareAddr, la.MTU = MemberLinkName(m.VLAN), trunk.Attrs().Index, m.MAC, trunk.Attrs().MTU
	var link netlink.Link = &netlink.Vlan{LinkAttrs: la, VlanId: m.VLAN}
	if m.Kind == MemberMACVLAN {
		link = &netlink.Macvlan{LinkAttrs: la, Mode: netlink.MACVLAN_MODE_BRIDGE}
	}
	if err := h.LinkAdd(link); err != nil {
		if m.Kind == MemberVLAN && errors.Is(err, unix.EOPNOTSUPP) {
			return "", fmt.Errorf("member link %s on %s: %w: this kernel has no 802.1Q VLAN support (CONFIG_VLAN_8021Q)", la.Name, trunk.Attrs().Name, err)
		}
		return "", fmt.Errorf("member link %s (%s) on %s: %w", la.Name, m.Kind, trunk.Attrs().Name, err)
	}
	return la.Name, nil
}

// DeleteMemberLink removes the host's member link with the member's MAC; none there is fine. Only a vlan or
// macvlan link is removed, never an ENI's own interface.
func DeleteMemberLink(mac net.HardwareAddr) error {
	h, err := netlink.NewHandle()
	if err != nil {
		return err
	}
	defer h.Close()
	l, err := linkByMAC(h, mac)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if t := l.Type(); t != "vlan" && t != "macvlan" {
		return fmt.Errorf("member link: the link with MAC %s is %s (a %s), not a member link: left alone", mac, l.Attrs().Name, t)
	}
	return h.LinkDel(l)
}
