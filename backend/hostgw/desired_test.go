package hostgw

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/weftnet/weft/backend"
	"github.com/weftnet/weft/subnet"
)

const testExt = 2 // external interface index in the plans below

func render(st State) []string {
	var out []string
	for _, r := range st.Routes {
		s := fmt.Sprintf("route %s via %s dev %d", r.Dst, r.Gw, r.LinkIndex)
		if r.Flags != 0 {
			s += fmt.Sprintf(" flags %d", r.Flags)
		}
		out = append(out, s)
	}
	for _, o := range st.OffLink {
		out = append(out, fmt.Sprintf("off-link %s gateway %s", o.Peer, o.Gateway))
	}
	return out
}

func peersOf(ls ...subnet.Lease) backend.Peers {
	p := backend.Peers{}
	for _, l := range ls {
		p[l.Key()] = l
	}
	return p
}

func onLink(addrs ...string) map[netip.Addr]bool {
	m := map[netip.Addr]bool{}
	for _, a := range addrs {
		m[netip.MustParseAddr(a)] = true
	}
	return m
}

func TestDesired(t *testing.T) {
	v4 := Self{Family: netlink.FAMILY_V4, Ext: testExt, Cluster: netip.MustParsePrefix("10.5.0.0/16"),
		OnLink: onLink("10.9.0.7", "10.9.0.8", "fd00:9::7")}
	v6 := v4
	v6.Family, v6.Cluster = netlink.FAMILY_V6, netip.MustParsePrefix("fd00:5::/56")
	p7 := peer("10.5.7.0/24", "10.9.0.7", "fd00:5:0:7::/64", "fd00:9::7")
	p8 := peer("10.5.8.0/24", "10.9.0.8", "", "")
	p9 := peer("10.5.9.0/24", "10.77.0.9", "", "")
	with := func(l subnet.Lease, f func(*subnet.Lease)) subnet.Lease { f(&l); return l }
	for _, tc := range []struct {
		name  string
		self  Self
		peers backend.Peers
		want  []string
	}{
		{"no peers", v4, nil, nil},
		{"IPv4", v4, peersOf(p8, p7), []string{"route 10.5.7.0/24 via 10.9.0.7 dev 2", "route 10.5.8.0/24 via 10.9.0.8 dev 2"}},
		{"IPv6 of dual-stack and IPv4-only peers", v6, peersOf(p7, p8), []string{"route fd00:5:0:7::/64 via fd00:9::7 dev 2"}},
		{"unmasked subnet", v4, peersOf(with(p8, func(l *subnet.Lease) { l.Subnet = netip.MustParsePrefix("10.5.8.9/24") })),
			[]string{"route 10.5.8.0/24 via 10.9.0.8 dev 2"}},
		{"off-link peer refused", v4, peersOf(p7, p9), []string{"route 10.5.7.0/24 via 10.9.0.7 dev 2", "off-link 10.5.9.0-24 gateway 10.77.0.9"}},
		{"unknown reachability is off-link", v4, peersOf(with(p8, func(l *subnet.Lease) { l.Attrs.PublicIP = netip.MustParseAddr("10.9.0.99") })),
			[]string{"off-link 10.5.8.0-24 gateway 10.9.0.99"}},
		{"foreign backend type", v4, peersOf(p7, with(p8, func(l *subnet.Lease) { l.Attrs.BackendType = "vxlan" })),
			[]string{"route 10.5.7.0/24 via 10.9.0.7 dev 2"}},
		{"BackendData is not read", v4, peersOf(with(p8, func(l *subnet.Lease) { l.Attrs.BackendData = json.RawMessage(`{"VtepMAC":`) })),
			[]string{"route 10.5.8.0/24 via 10.9.0.8 dev 2"}},
		{"no PublicIP", v4, peersOf(with(p8, func(l *subnet.Lease) { l.Attrs.PublicIP = netip.Addr{} })), nil},
		{"no IPv4 subnet", v4, peersOf(with(p8, func(l *subnet.Lease) { l.Subnet = netip.Prefix{} })), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := render(Desired(tc.peers, tc.self))
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

func TestDesiredPeerRemoved(t *testing.T) {
	self := Self{Family: netlink.FAMILY_V4, Ext: testExt, OnLink: onLink("10.9.0.7", "10.9.0.8")}
	p7, p8 := peer("10.5.7.0/24", "10.9.0.7", "", ""), peer("10.5.8.0/24", "10.9.0.8", "", "")
	before, after := render(Desired(peersOf(p7, p8), self)), render(Desired(peersOf(p7), self))
	if len(before) != 2 || strings.Join(after, "\n") != "route 10.5.7.0/24 via 10.9.0.7 dev 2" {
		t.Fatalf("before %q, after removing 10.5.8.0/24 %q", before, after)
	}
}

func TestOwns(t *testing.T) {
	s := Self{Family: netlink.FAMILY_V4, Ext: testExt, Cluster: netip.MustParsePrefix("10.5.0.0/16")}
	ipnet := func(p string) *net.IPNet { return backend.PrefixToIPNet(netip.MustParsePrefix(p)) }
	for _, tc := range []struct {
		name string
		r    netlink.Route
		want bool
	}{
		{"gateway route into the cluster", netlink.Route{Dst: ipnet("10.5.7.0/24"), Gw: net.ParseIP("10.9.0.7"), LinkIndex: testExt}, true},
		{"outside the cluster", netlink.Route{Dst: ipnet("192.168.7.0/24"), Gw: net.ParseIP("10.9.0.7"), LinkIndex: testExt}, false},
		{"no gateway", netlink.Route{Dst: ipnet("10.5.7.0/24"), LinkIndex: testExt}, false},
		{"another link", netlink.Route{Dst: ipnet("10.5.7.0/24"), Gw: net.ParseIP("10.9.0.7"), LinkIndex: 9}, false},
		{"default route", netlink.Route{Gw: net.ParseIP("10.9.0.1"), LinkIndex: testExt}, false},
	} {
		if got := s.Owns(tc.r); got != tc.want {
			t.Errorf("%s: Owns = %v, want %v", tc.name, got, tc.want)
		}
	}
}
