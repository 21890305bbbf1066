package cniproto

import (
	"bytes"
	"fmt"
	"net"
)

// Trunk member ENIs: in exclusive mode the pod's ENI may be a member ENI of the node's trunk ENI, which has no
// NIC of its own: the plugin makes its link on the trunk's interface (found by the trunk's MAC) with the
// member's MAC and, for an 802.1Q link, its VLAN id, then moves that link into the pod as it would an ENI.

// The kinds of a member ENI's link, TrunkInfo.Link (datapath.MemberVLAN, datapath.MemberMACVLAN).
const (
	TrunkLinkVLAN    = "vlan"
	TrunkLinkMACVLAN = "macvlan"
)

// MaxVLAN is the highest 802.1Q VLAN id.
const MaxVLAN = 4094

// TrunkInfo is a member ENI's trunk: the trunk ENI's MAC, the member's VLAN id and how its link is made.
type TrunkInfo struct {
	MAC  string
	VLAN int
	Link string
}

// validateTrunk checks ENI.Trunk: only in exclusive mode; the trunk's MAC (a unicast one, not the member's), a
// VLAN id in 1..MaxVLAN, a known link kind.
func (r AddReply) validateTrunk() error {
	t := r.ENI.Trunk
	if t == nil {
		return nil
	}
	if r.Mode != ModeExclusive {
		return fmt.Errorf("ENI.Trunk: a trunk member ENI in Mode %q, expected %q (a member is a whole ENI)", clip(r.Mode), ModeExclusive)
	}
	m, err := net.ParseMAC(t.MAC)
	if err != nil || len(m) != 6 || m[0]&1 != 0 {
		return fmt.Errorf("ENI.Trunk.MAC %q: expected the trunk ENI's unicast MAC", clip(t.MAC))
	}
	if own, err := net.ParseMAC(r.ENI.MAC); err == nil && bytes.Equal(own, m) {
		return fmt.Errorf("ENI.Trunk.MAC %q: expected the trunk ENI's MAC, not the member's own", clip(t.MAC))
	}
	if t.VLAN < 1 || t.VLAN > MaxVLAN {
		return fmt.Errorf("ENI.Trunk.VLAN %d: expected 1..%d", t.VLAN, MaxVLAN)
	}
	if t.Link != TrunkLinkVLAN && t.Link != TrunkLinkMACVLAN {
		return fmt.Errorf("ENI.Trunk.Link %q: expected %q or %q", clip(t.Link), TrunkLinkVLAN, TrunkLinkMACVLAN)
	}
	return nil
}
