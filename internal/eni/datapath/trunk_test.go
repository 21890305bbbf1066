package datapath

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
)

func TestMemberLinkValidation(t *testing.T) {
	trunk, _ := net.ParseMAC("00:16:3e:00:aa:02")
	mac, _ := net.ParseMAC("00:16:3e:00:bb:01")
	multicast, _ := net.ParseMAC("01:00:5e:00:00:01")
	ok := MemberLink{TrunkMAC: trunk, MAC: mac, VLAN: 7, Kind: MemberMACVLAN}
	if err := ok.validate(); err != nil {
		t.Fatal(err)
	}
	for want, mod := range map[string]func(*MemberLink){
		"TrunkMAC":                  func(m *MemberLink) { m.TrunkMAC = nil },
		"MAC \"01:00:5e:00:00:01\"": func(m *MemberLink) { m.MAC = multicast },
		"VLAN 0: expected 1..4094":  func(m *MemberLink) { m.VLAN = 0 },
		"VLAN 4095":                 func(m *MemberLink) { m.VLAN = 4095 },
		`Kind "ipvlan"`:             func(m *MemberLink) { m.Kind = "ipvlan" },
	} {
		m := ok
		mod(&m)
		if _, err := EnsureMemberLink(m); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", want, err)
		}
	}
}

// A member link on the trunk's interface (eth2 here, a veth to the "VPC" namespace holding the gateway) carries the
// member's MAC; AddExclusive moves it into the pod as eth0, whose traffic reaches the gateway's side; DelExclusive
// brings it back to the host and DeleteMemberLink removes it, and leaves the trunk's own interface alone.
func TestMemberLinkIntoThePodAndBack(t *testing.T) {
	n := newExclusiveNet(t)
	mac, _ := net.ParseMAC("00:16:3e:00:bb:01")
	m := MemberLink{TrunkMAC: n.mac, MAC: mac, VLAN: 7, Kind: MemberMACVLAN}
	var name string
	var err error
	n.inHost(func() { name, err = EnsureMemberLink(m) })
	if err != nil || name != "weftm7" {
		t.Fatalf("EnsureMemberLink: %q %v", name, err)
	}
	n.inHost(func() { name, err = EnsureMemberLink(m) }) // again: kept
	if err != nil || name != "weftm7" {
		t.Fatalf("EnsureMemberLink again: %q %v", name, err)
	}
	p := n.xpod()
	p.MAC, p.IP = mac, netip.MustParseAddr("10.9.0.6")
	if _, err := n.add(p); err != nil {
		t.Fatal(err)
	}
	eth0 := linkByName(t, n.pod, "eth0")
	if eth0.Attrs().HardwareAddr.String() != mac.String() || eth0.Type() != "macvlan" {
		t.Fatalf("pod eth0: %s %s", eth0.Type(), eth0.Attrs().HardwareAddr)
	}
	if src, err := echo(t, n.vpcNs, "10.9.0.253:7007", n.podNs); err != nil || src != "10.9.0.6" {
		t.Fatalf("pod -> gateway side through the member link: %q %v", src, err)
	}
	if err := n.delx(p); err != nil {
		t.Fatal(err)
	}
	n.inHost(func() { err = DeleteMemberLink(mac) })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.host.LinkByName("weftm7"); err == nil {
		t.Fatal("the member link is still on the host")
	}
	n.inHost(func() { err = DeleteMemberLink(mac) })
	if err != nil {
		t.Fatalf("deleting a member link already gone: %v", err)
	}
	n.inHost(func() { err = DeleteMemberLink(n.mac) })
	if err == nil || !strings.Contains(err.Error(), "not a member link") {
		t.Fatalf("DeleteMemberLink on the trunk's own interface: %v", err)
	}
	if _, err := n.host.LinkByName("eth2"); err != nil {
		t.Fatalf("the trunk's interface: %v", err)
	}
	// An 802.1Q member link: made where the kernel has 802.1Q, else refused naming what is missing.
	m.Kind = MemberVLAN
	n.inHost(func() { name, err = EnsureMemberLink(m) })
	if err != nil && !strings.Contains(err.Error(), "no 802.1Q VLAN support") {
		t.Fatalf("vlan member link: %v", err)
	}
	if err == nil {
		l := linkByName(t, n.host, name)
		if v, ok := l.(*netlink.Vlan); !ok || v.VlanId != 7 || l.Attrs().HardwareAddr.String() != mac.String() {
			t.Fatalf("vlan member link %+v", l)
		}
	}
}
