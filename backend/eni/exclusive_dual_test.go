package eni

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/weftnet/weft/backend"
	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/internal/eni/cniproto"
	"github.com/weftnet/weft/internal/eni/pool"
)

// Exclusive dual stack: one IPv6 address per ENI whatever the type allows, the capacity EniQuantity - 1; refused
// as shared dual stack is when the type takes no IPv6 address or a vSwitch has no IPv6 CIDR.
func TestExclusiveDualLimits(t *testing.T) {
	l := ExclusiveLimits("ecs.g7.large", 3)
	v6 := aliyun.VSwitch{ID: "vsw-a", CIDR: netip.MustParsePrefix("10.0.0.0/24"), IPv6CIDR: netip.MustParsePrefix("2408:4005:300:a100::/64")}
	typ := aliyun.InstanceType{ID: "ecs.g7.large", ENIs: 3, IPv4PerENI: 6, IPv6PerENI: 6}
	got, err := dualLimits(l, typ, []aliyun.VSwitch{v6})
	if err != nil {
		t.Fatal(err)
	}
	if got.IPv6PerENI != 1 || !got.Exclusive || got.Pods() != 2 {
		t.Fatalf("limits %+v (pods %d), want exclusive with 1 IPv6 address per ENI and 2 pods", got, got.Pods())
	}
	if err := (pool.Config{Limits: got}).Validate(); err != nil && strings.Contains(err.Error(), "IPv6PerENI") {
		t.Fatalf("the pool refuses the limits: %v", err)
	}
	typ0 := typ
	typ0.IPv6PerENI = 0
	if _, err := dualLimits(l, typ0, []aliyun.VSwitch{v6}); err == nil || !strings.Contains(err.Error(), "EniIpv6AddressQuantity 0") {
		t.Fatalf("a type without IPv6: %v", err)
	}
	v4only := aliyun.VSwitch{ID: "vsw-b", CIDR: netip.MustParsePrefix("10.0.1.0/24")}
	if _, err := dualLimits(l, typ, []aliyun.VSwitch{v6, v4only}); err == nil || !strings.Contains(err.Error(), "vSwitch vsw-b has no IPv6 CIDR") {
		t.Fatalf("a vSwitch without IPv6: %v", err)
	}
}

// The exclusive dual-stack reply: the pod's IPv6 address, the vSwitch's block and gateway, and the node's IPv6
// address as a host route when the node has one (none when it has none, or in shared mode).
func TestExclusiveDualReply(t *testing.T) {
	node6 := netip.MustParseAddr("2408:4005:300:a1ff::10")
	n := &Network{exclusive: true, d: agentDeps{deps: backend.Deps{ExtIface: &backend.ExternalInterface{
		IfaceAddr: netip.MustParseAddr("192.168.0.10"), IfaceV6: node6}}}}
	e := &eniState{ENI: aliyun.ENI{ID: "eni-1", PrimaryIP: netip.MustParseAddr("192.168.0.40")},
		gateway6: netip.MustParseAddr("2408:4005:300:a100::1"), cidr6: netip.MustParsePrefix("2408:4005:300:a100::/64")}
	a := pool.Allocation{IP: e.PrimaryIP, IPv6: netip.MustParseAddr("2408:4005:300:a100::29")}
	r := cniproto.AddReply{IP: a.IP}
	n.exclusiveReply(&r, e)
	if err := dualReply(&r, a, e); err != nil {
		t.Fatal(err)
	}
	n.exclusiveDualReply(&r)
	if r.IPv6 != a.IPv6 || r.ENI.IPv6Gateway != e.gateway6 || r.ENI.VSwitchIPv6CIDR != e.cidr6 ||
		!reflect.DeepEqual(r.HostRoutes6, []netip.Prefix{netip.PrefixFrom(node6, 128)}) {
		t.Fatalf("reply %+v", r)
	}
	n.d.deps.ExtIface.IfaceV6 = netip.Addr{}
	r.HostRoutes6 = nil
	n.exclusiveDualReply(&r)
	if r.HostRoutes6 != nil {
		t.Fatalf("a node without IPv6: host routes %v", r.HostRoutes6)
	}
	n.d.deps.ExtIface.IfaceV6, n.exclusive = node6, false
	n.exclusiveDualReply(&r)
	if r.HostRoutes6 != nil {
		t.Fatalf("shared mode: host routes %v", r.HostRoutes6)
	}
}
