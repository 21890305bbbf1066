package cniproto

import (
	"net/netip"
	"testing"
)

func dualReply() AddReply {
	return AddReply{Version: Version, IP: netip.MustParseAddr("192.168.0.41"), Table: 1003,
		IPv6: netip.MustParseAddr("2408:4005:300:a100::29"),
		ENI: ENIInfo{ID: "eni-1", MAC: "00:16:3e:00:00:09", VSwitchCIDR: netip.MustParsePrefix("192.168.0.0/24"),
			Gateway: netip.MustParseAddr("192.168.0.253"), VSwitchIPv6CIDR: netip.MustParsePrefix("2408:4005:300:a100::/64"),
			IPv6Gateway: netip.MustParseAddr("2408:4005:300:a100::1")}}
}

// The IPv6 fields are additive: an IPv4-only reply encodes without them, a dual one round-trips and validates.
func TestDualReplyIsAdditive(t *testing.T) {
	checkAdditive(t, AddReply{Version: Version, IP: netip.MustParseAddr("192.168.0.41"), Table: 1003},
		[]string{"IPv6", "VSwitchIPv6CIDR", "IPv6Gateway"}, dualReply())
}

func TestDualReplyRefusesBadFields(t *testing.T) {
	checkRefuses(t, dualReply, []fieldCase{
		{"IPv6 10.0.0.1", func(r *AddReply) { r.IPv6 = netip.MustParseAddr("10.0.0.1") }},
		{"IPv6 fe80::2", func(r *AddReply) { r.IPv6 = netip.MustParseAddr("fe80::2") }},
		{"ENI.VSwitchIPv6CIDR", func(r *AddReply) { r.ENI.VSwitchIPv6CIDR = netip.MustParsePrefix("2408:4005:300:b100::/64") }},
		{"ENI.VSwitchIPv6CIDR", func(r *AddReply) { r.ENI.VSwitchIPv6CIDR = netip.Prefix{} }},
		{"ENI.IPv6Gateway", func(r *AddReply) { r.ENI.IPv6Gateway = netip.Addr{} }},
		{"ENI.IPv6Gateway", func(r *AddReply) { r.ENI.IPv6Gateway = r.IPv6 }},
		{"ENI.IPv6Gateway", func(r *AddReply) { r.IPv6 = netip.Addr{}; r.ENI.VSwitchIPv6CIDR = netip.Prefix{} }},
		{"HostRoutes6", func(r *AddReply) { r.HostRoutes6 = []netip.Prefix{netip.MustParsePrefix("2408:4005:300:a1ff::10/128")} }},
	})
}
