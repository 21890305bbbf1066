package plugin

// Trunk member ENIs: weftd's exclusive ADD reply may name a member ENI of the node's trunk ENI (ENI.Trunk: the
// trunk's MAC, the member's VLAN id, the link kind). A member has no NIC of its own on the host: before
// AddExclusive the plugin makes its link on the trunk's interface (datapath.EnsureMemberLink), which AddExclusive
// then moves into the pod as it would an ENI; a failed ADD removes it again once the ENI is back on the host, and
// DEL does the same after returning the ENI (datapath.DeleteMemberLink). A pod namespace already gone took the
// link with it: removing a link that is not there is success.

import (
	"fmt"
	"net"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/weftnet/weft/internal/eni/cniproto"
	"github.com/weftnet/weft/internal/eni/datapath"
)

// MemberDatapath makes and removes member ENI links; Netlink implements it. A Datapath without it refuses
// member ENIs.
type MemberDatapath interface {
	EnsureMemberLink(m datapath.MemberLink) (string, error)
	DeleteMemberLink(mac net.HardwareAddr) error
}

func (Netlink) EnsureMemberLink(m datapath.MemberLink) (string, error) {
	return datapath.EnsureMemberLink(m)
}

func (Netlink) DeleteMemberLink(mac net.HardwareAddr) error { return datapath.DeleteMemberLink(mac) }

// memberLink is the datapath's MemberLink of a reply's member ENI (cniproto validated its fields).
func memberLink(reply cniproto.AddReply) (datapath.MemberLink, error) {
	t := reply.ENI.Trunk
	trunk, err := net.ParseMAC(t.MAC)
	if err != nil {
		return datapath.MemberLink{}, fmt.Errorf("ENI.Trunk.MAC %q: %w", t.MAC, err)
	}
	mac, err := net.ParseMAC(reply.ENI.MAC)
	if err != nil {
		return datapath.MemberLink{}, fmt.Errorf("ENI.MAC %q: %w", reply.ENI.MAC, err)
	}
	kind := datapath.MemberVLAN
	if t.Link == cniproto.TrunkLinkMACVLAN {
		kind = datapath.MemberMACVLAN
	}
	return datapath.MemberLink{TrunkMAC: trunk, MAC: mac, VLAN: t.VLAN, Kind: kind}, nil
}

// ensureMemberLink makes the member's link and has undo remove it should the ADD fail.
func (p *Plugin) ensureMemberLink(reply cniproto.AddReply, undo *addUndo) error {
	md, ok := p.Datapath.(MemberDatapath)
	if !ok {
		return types.NewError(types.ErrInternal, "ADD: weftd answered a trunk member ENI, which this plugin's datapath cannot build", "")
	}
	m, err := memberLink(reply)
	if err != nil {
		return types.NewError(types.ErrInternal, "ADD: "+err.Error(), "")
	}
	if _, err := md.EnsureMemberLink(m); err != nil {
		return types.NewError(types.ErrInternal, fmt.Sprintf("ADD: the link of trunk member ENI %s (VLAN %d, %s; Backend.trunk_link) on its trunk: %v",
			reply.ENI.ID, m.VLAN, m.Kind, err), "")
	}
	undo.datapath = func() error { return md.DeleteMemberLink(m.MAC) }
	return nil
}

// deleteMemberLink removes a member ENI's link, its ENI back on the host; nothing for an ordinary ENI.
func (p *Plugin) deleteMemberLink(x *exclusiveState) error {
	md, ok := p.Datapath.(MemberDatapath)
	if x == nil || !x.Member || !ok {
		return nil
	}
	mac, err := net.ParseMAC(x.MAC)
	if err != nil {
		return fmt.Errorf("the member ENI's MAC %q: %w", x.MAC, err)
	}
	return md.DeleteMemberLink(mac)
}
