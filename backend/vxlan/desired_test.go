package vxlan

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/backend"
	"github.com/weftnet/weft/subnet"
)

const (
	testDev = 5 // vxlan device index in the plans below
	testExt = 2 // external interface index
)

// render lists a plan as text, in its order: routes, neighbours, FDB entries, skipped peers.
func render(st State) []string {
	var out []string
	for _, r := range st.Routes {
		s := fmt.Sprintf("route %s via %s dev %d", r.Dst, r.Gw, r.LinkIndex)
		if r.Flags&int(netlink.FLAG_ONLINK) != 0 {
			s += " onlink"
		}
		out = append(out, s)
	}
	for _, n := range st.Neigh {
		out = append(out, "neigh "+n.String())
	}
	for _, f := range st.FDB {
		out = append(out, "fdb "+f.String())
	}
	for _, s := range st.Skipped {
		out = append(out, "skip "+s.Peer+": "+s.Reason)
	}
	return out
}

// dual is a dual-stack vxlan peer numbered n: subnets 10.5.n.0/24 and fd00:5:0:n::/64.
func dual(n int, pub, pub6 string) subnet.Lease {
	l := peer(fmt.Sprintf("10.5.%d.0/24", n), pub, fmt.Sprintf("0e:00:00:00:00:%02x", n))
	l.EnableIPv6, l.IPv6Subnet = true, netip.MustParsePrefix(fmt.Sprintf("fd00:5:0:%x::/64", n))
	l.Attrs.PublicIPv6 = netip.MustParseAddr(pub6)
	l.Attrs.BackendV6Data = json.RawMessage(fmt.Sprintf(`{"VNI":1,"VtepMAC":"0e:00:00:00:01:%02x"}`, n))
	return l
}

func peersOf(ls ...subnet.Lease) backend.Peers {
	p := backend.Peers{}
	for _, l := range ls {
		p[l.Key()] = l
	}
	return p
}

func v4self() Self {
	return Self{Family: netlink.FAMILY_V4, Device: testDev, Ext: testExt, Cluster: netip.MustParsePrefix("10.5.0.0/16")}
}

func v6self() Self {
	return Self{Family: netlink.FAMILY_V6, Device: testDev, Ext: testExt, Cluster: netip.MustParsePrefix("fd00:5::/56")}
}

func TestDesired(t *testing.T) {
	p7 := peer("10.5.7.0/24", "10.9.0.7", "0e:00:00:00:00:07")
	p8 := peer("10.5.8.0/24", "10.77.0.8", "0e:00:00:00:00:08")
	with := func(l subnet.Lease, f func(*subnet.Lease)) subnet.Lease { f(&l); return l }
	direct := v4self()
	direct.DirectRouting = true
	direct.OnLink = map[netip.Addr]bool{netip.MustParseAddr("10.9.0.7"): true, netip.MustParseAddr("10.77.0.8"): false}
	onLinkIgnored := v4self()
	onLinkIgnored.OnLink = direct.OnLink

	for _, tc := range []struct {
		name  string
		self  Self
		peers backend.Peers
		want  []string
	}{
		{"no peers", v4self(), nil, nil},
		{"IPv4", v4self(), peersOf(p8, p7), []string{
			"route 10.5.7.0/24 via 10.5.7.0 dev 5 onlink",
			"route 10.5.8.0/24 via 10.5.8.0 dev 5 onlink",
			"neigh 10.5.7.0 lladdr 0e:00:00:00:00:07",
			"neigh 10.5.8.0 lladdr 0e:00:00:00:00:08",
			"fdb 0e:00:00:00:00:07 dst 10.9.0.7",
			"fdb 0e:00:00:00:00:08 dst 10.77.0.8",
		}},
		{"unmasked subnet", v4self(), peersOf(with(p7, func(l *subnet.Lease) { l.Subnet = netip.MustParsePrefix("10.5.7.9/24") })), []string{
			"route 10.5.7.0/24 via 10.5.7.0 dev 5 onlink",
			"neigh 10.5.7.0 lladdr 0e:00:00:00:00:07",
			"fdb 0e:00:00:00:00:07 dst 10.9.0.7",
		}},
		{"IPv6 of a dual-stack peer", v6self(), peersOf(dual(7, "10.9.0.7", "fd00:9::7")), []string{
			"route fd00:5:0:7::/64 via fd00:5:0:7:: dev 5 onlink",
			"neigh fd00:5:0:7:: lladdr 0e:00:00:00:01:07",
			"fdb 0e:00:00:00:01:07 dst fd00:9::7",
		}},
		{"IPv4 of a dual-stack peer", v4self(), peersOf(dual(7, "10.9.0.7", "fd00:9::7")), []string{
			"route 10.5.7.0/24 via 10.5.7.0 dev 5 onlink",
			"neigh 10.5.7.0 lladdr 0e:00:00:00:00:07",
			"fdb 0e:00:00:00:00:07 dst 10.9.0.7",
		}},
		{"IPv6 family, IPv4-only peer", v6self(), peersOf(p7), []string{"skip 10.5.7.0-24: no IPv6 subnet"}},
		{"IPv6 without BackendV6Data", v6self(), peersOf(with(dual(7, "10.9.0.7", "fd00:9::7"), func(l *subnet.Lease) { l.Attrs.BackendV6Data = nil })),
			[]string{`skip 10.5.7.0-24&fd00:5:0:7::-64: BackendV6Data: empty, expected {"VNI":<n>,"VtepMAC":"<mac>"}`}},
		{"foreign backend type", v4self(), peersOf(p7, with(p8, func(l *subnet.Lease) { l.Attrs.BackendType = "host-gw" })), []string{
			"route 10.5.7.0/24 via 10.5.7.0 dev 5 onlink",
			"neigh 10.5.7.0 lladdr 0e:00:00:00:00:07",
			"fdb 0e:00:00:00:00:07 dst 10.9.0.7",
			`skip 10.5.8.0-24: backend type "host-gw", not "vxlan"`,
		}},
		{"malformed BackendData", v4self(), peersOf(with(p7, func(l *subnet.Lease) { l.Attrs.BackendData = json.RawMessage(`{"VNI":1,"VtepMAC":`) })),
			[]string{"skip 10.5.7.0-24: BackendData: not a vxlan lease object: unexpected end of JSON input"}},
		{"VtepMAC not a MAC", v4self(), peersOf(with(p7, func(l *subnet.Lease) { l.Attrs.BackendData = json.RawMessage(`{"VNI":1,"VtepMAC":"zz"}`) })),
			[]string{`skip 10.5.7.0-24: BackendData: VtepMAC "zz" is not a MAC address`}},
		{"no VtepMAC", v4self(), peersOf(with(p7, func(l *subnet.Lease) { l.Attrs.BackendData = json.RawMessage(`{"VNI":1}`) })),
			[]string{`skip 10.5.7.0-24: BackendData: VtepMAC "" is not a MAC address`}},
		{"no PublicIP", v4self(), peersOf(with(p7, func(l *subnet.Lease) { l.Attrs.PublicIP = netip.Addr{} })),
			[]string{"skip 10.5.7.0-24: no IPv4 public address"}},
		{"DirectRouting: on-link peer routed directly", direct, peersOf(p7, p8), []string{
			"route 10.5.7.0/24 via 10.9.0.7 dev 2",
			"route 10.5.8.0/24 via 10.5.8.0 dev 5 onlink",
			"neigh 10.5.8.0 lladdr 0e:00:00:00:00:08",
			"fdb 0e:00:00:00:00:08 dst 10.77.0.8",
		}},
		{"OnLink ignored without DirectRouting", onLinkIgnored, peersOf(p7), []string{
			"route 10.5.7.0/24 via 10.5.7.0 dev 5 onlink",
			"neigh 10.5.7.0 lladdr 0e:00:00:00:00:07",
			"fdb 0e:00:00:00:00:07 dst 10.9.0.7",
		}},
		{"one VtepMAC claimed twice: the lower key keeps the FDB entry", v4self(),
			peersOf(p7, with(p8, func(l *subnet.Lease) { l.Attrs.BackendData = p7.Attrs.BackendData })), []string{
				"route 10.5.7.0/24 via 10.5.7.0 dev 5 onlink",
				"route 10.5.8.0/24 via 10.5.8.0 dev 5 onlink",
				"neigh 10.5.7.0 lladdr 0e:00:00:00:00:07",
				"neigh 10.5.8.0 lladdr 0e:00:00:00:00:07",
				"fdb 0e:00:00:00:00:07 dst 10.9.0.7",
			}},
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
	p7, p8 := dual(7, "10.9.0.7", "fd00:9::7"), dual(8, "10.9.0.8", "fd00:9::8")
	for _, self := range []Self{v4self(), v6self()} {
		before, after := render(Desired(peersOf(p7, p8), self)), render(Desired(peersOf(p7), self))
		alone := render(Desired(peersOf(p7), self))
		if len(before) != 6 || len(after) != 3 || strings.Join(after, "\n") != strings.Join(alone, "\n") {
			t.Fatalf("family %d: before %q after %q", self.Family, before, after)
		}
		for _, line := range after {
			if strings.Contains(line, ":08") || strings.Contains(line, "5.8.") || strings.Contains(line, "0:8:") {
				t.Errorf("family %d: removed peer still planned: %s", self.Family, line)
			}
		}
	}
}

func TestOwns(t *testing.T) {
	ipnet := func(s string) *net.IPNet { return backend.PrefixToIPNet(netip.MustParsePrefix(s)) }
	direct := v4self()
	direct.DirectRouting = true
	for _, tc := range []struct {
		name string
		self Self
		r    netlink.Route
		want bool
	}{
		{"route on the device", v4self(), netlink.Route{Dst: ipnet("10.5.7.0/24"), LinkIndex: testDev}, true},
		{"kernel route of the device's address", v4self(), netlink.Route{Dst: ipnet("10.5.1.0/32"), LinkIndex: testDev, Protocol: unix.RTPROT_KERNEL}, false},
		{"default route on the device", v4self(), netlink.Route{LinkIndex: testDev}, false},
		{"direct route without DirectRouting", v4self(), netlink.Route{Dst: ipnet("10.5.7.0/24"), Gw: net.ParseIP("10.9.0.7"), LinkIndex: testExt}, false},
		{"direct route", direct, netlink.Route{Dst: ipnet("10.5.7.0/24"), Gw: net.ParseIP("10.9.0.7"), LinkIndex: testExt}, true},
		{"direct route outside the cluster", direct, netlink.Route{Dst: ipnet("192.168.7.0/24"), Gw: net.ParseIP("10.9.0.7"), LinkIndex: testExt}, false},
		{"connected route in the cluster", direct, netlink.Route{Dst: ipnet("10.5.7.0/24"), LinkIndex: testExt}, false},
		{"route on another link", direct, netlink.Route{Dst: ipnet("10.5.7.0/24"), Gw: net.ParseIP("10.9.0.7"), LinkIndex: 9}, false},
	} {
		if got := tc.self.Owns(tc.r); got != tc.want {
			t.Errorf("%s: Owns = %v, want %v", tc.name, got, tc.want)
		}
	}
}
