package cniproto

import "testing"

func memberReply() AddReply {
	r := exclusiveReply()
	r.ENI.Trunk = &TrunkInfo{MAC: "00:16:3e:00:00:aa", VLAN: 3, Link: TrunkLinkVLAN}
	return r
}

// The trunk fields are additive: an ordinary exclusive reply carries no Trunk, a member's round-trips.
func TestTrunkReplyIsAdditive(t *testing.T) {
	checkAdditive(t, exclusiveReply(), []string{"Trunk", "VLAN"}, memberReply())
	r := memberReply()
	r.ENI.Trunk.Link = TrunkLinkMACVLAN
	if err := r.validate(); err != nil {
		t.Fatal(err)
	}
}

func TestTrunkReplyRefusesBadFields(t *testing.T) {
	checkRefuses(t, memberReply, []fieldCase{
		{"ENI.Trunk: a trunk member ENI in Mode \"shared\"", func(r *AddReply) { r.Mode = ModeShared }},
		{"ENI.Trunk.MAC \"nope\"", func(r *AddReply) { r.ENI.Trunk.MAC = "nope" }},
		{"ENI.Trunk.MAC \"01:00:5e:00:00:01\"", func(r *AddReply) { r.ENI.Trunk.MAC = "01:00:5e:00:00:01" }},
		{"not the member's own", func(r *AddReply) { r.ENI.Trunk.MAC = r.ENI.MAC }},
		{"ENI.Trunk.VLAN 0: expected 1..4094", func(r *AddReply) { r.ENI.Trunk.VLAN = 0 }},
		{"ENI.Trunk.VLAN 4095", func(r *AddReply) { r.ENI.Trunk.VLAN = 4095 }},
		{"ENI.Trunk.Link \"ipvlan\": expected \"vlan\" or \"macvlan\"", func(r *AddReply) { r.ENI.Trunk.Link = "ipvlan" }},
	})
}
