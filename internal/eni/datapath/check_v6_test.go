package datapath

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// CHECK of a dual-stack pod passes on what Add made and names each IPv6 piece someone removed.
func TestIPv6Check(t *testing.T) {
	for _, c := range []struct {
		name    string
		breakIt func(t *testing.T, n *testNet, p Pod, hostVeth string)
		want    string
	}{
		{"intact", nil, ""},
		{"pod address", func(t *testing.T, n *testNet, p Pod, _ string) {
			mustDo(t, n.pod.AddrDel(linkByName(t, n.pod, "eth0"), &netlink.Addr{IPNet: host128(p.IPv6)}))
		}, "pod IPv6 address " + pod6.String() + "/128 on eth0: missing"},
		{"pod default route", func(t *testing.T, n *testNet, p Pod, _ string) {
			mustDo(t, n.pod.RouteDel(&netlink.Route{LinkIndex: linkByName(t, n.pod, "eth0").Attrs().Index, Family: netlink.FAMILY_V6,
				Dst: &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}, Gw: net.ParseIP(GatewayV6)}))
		}, "pod IPv6 default route via fe80::1 dev eth0: missing"},
		{"pod gateway neighbour", func(t *testing.T, n *testNet, p Pod, _ string) {
			mustDo(t, n.pod.NeighDel(&netlink.Neigh{LinkIndex: linkByName(t, n.pod, "eth0").Attrs().Index, Family: netlink.FAMILY_V6,
				IP: net.ParseIP(GatewayV6)}))
		}, "pod neighbour fe80::1 lladdr <host veth MAC> permanent on eth0: missing"},
		{"host route", func(t *testing.T, n *testNet, p Pod, veth string) {
			mustDo(t, n.host.RouteDel(&netlink.Route{LinkIndex: linkByName(t, n.host, veth).Attrs().Index, Family: netlink.FAMILY_V6,
				Dst: host128(p.IPv6), Table: unix.RT_TABLE_MAIN}))
		}, "host route " + pod6.String() + "/128 dev"},
		{"host neighbour", func(t *testing.T, n *testNet, p Pod, veth string) {
			mustDo(t, n.host.NeighDel(&netlink.Neigh{LinkIndex: linkByName(t, n.host, veth).Attrs().Index, Family: netlink.FAMILY_V6,
				IP: net.IP(p.IPv6.AsSlice())}))
		}, "host neighbour " + pod6.String() + " lladdr <pod MAC> permanent"},
		{"rule to the pod", func(t *testing.T, n *testNet, p Pod, _ string) {
			mustDo(t, n.host.RuleDel(podRule{Priority: 512, To: true, IP: p.IPv6, Table: unix.RT_TABLE_MAIN}.rule()))
		}, "rule 512 to " + pod6.String() + "/128 lookup 254: missing"},
		{"rule from the pod, wrong table", func(t *testing.T, n *testNet, p Pod, _ string) {
			mustDo(t, n.host.RuleDel(podRule{Priority: 2048, IP: p.IPv6, Table: p.Table}.rule()))
			mustDo(t, n.host.RuleAdd(podRule{Priority: 2048, IP: p.IPv6, Table: 1009}.rule()))
		}, "rule 2048 from " + pod6.String() + "/128 lookup 1005: missing; wrong instead: [rule 2048 from " + pod6.String() + "/128 lookup 1009]"},
	} {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			n := newTestNet(t)
			p := n.testPod()
			p.IPv6 = pod6
			res, err := n.add(p)
			if err != nil {
				t.Fatal(err)
			}
			if c.breakIt != nil {
				c.breakIt(t, n, p, res.HostVeth)
			}
			err = n.check(p)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("CHECK of an intact dual-stack pod: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("CHECK with the %s removed: %v, want an error naming %q", c.name, err, c.want)
			}
			if c.want != "" && strings.Count(err.Error(), "missing") != 1 {
				t.Errorf("CHECK with only the %s removed reports more: %v", c.name, err)
			}
		})
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// SyncRules6 makes the IPv6 pod rules at the two priorities exactly the wanted ones (a stray one goes, a missing
// one comes back, a wrong table is put right), leaves IPv4 rules and other priorities alone, and refuses an IPv4
// address without changing anything; ObserveRules6 lists what is there.
func TestSyncRules6(t *testing.T) {
	n := newTestNet(t)
	a, stray := netip.MustParseAddr("2001:db8:9::5"), netip.MustParseAddr("2001:db8:9::66")
	v4 := podRule{Priority: 2048, IP: netip.MustParseAddr("10.9.0.5"), Table: 1005}
	other := podRule{Priority: 3000, IP: stray, Table: 1005}
	for _, k := range []podRule{v4, other, {Priority: 2048, IP: stray, Table: 1005}, {Priority: 512, To: true, IP: stray, Table: 254},
		{Priority: 2048, IP: a, Table: 1009}} {
		mustDo(t, n.host.RuleAdd(k.rule()))
	}
	h := Host{H: n.host}
	if err := h.SyncRules6([]PodRule{{IP: netip.MustParseAddr("10.9.0.7"), Table: 1005}}, nil); err == nil || !strings.Contains(err.Error(), "want an IPv6 address") {
		t.Fatalf("SyncRules6 with an IPv4 address: %v, want an error naming it", err)
	}
	if got := rules6At(t, n.host, 2048); len(got) != 2 {
		t.Fatalf("a refused SyncRules6 changed the rules: %q", got)
	}
	if err := h.SyncRules6([]PodRule{{IP: a, Table: 1005}}, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := rules6At(t, n.host, 512), []string{"rule 512 to " + a.String() + "/128 lookup 254"}; !slices.Equal(got, want) {
		t.Errorf("IPv6 rules at 512: %q, want %q", got, want)
	}
	if got, want := rules6At(t, n.host, 2048), []string{"rule 2048 from " + a.String() + "/128 lookup 1005"}; !slices.Equal(got, want) {
		t.Errorf("IPv6 rules at 2048: %q, want %q", got, want)
	}
	if got := rules6At(t, n.host, 3000); len(got) != 1 {
		t.Errorf("the IPv6 rule at another priority was touched: %q", got)
	}
	if got := rulesAt(t, n.host, 2048); len(got) != 1 {
		t.Errorf("the IPv4 rule at 2048 was touched: %q", got)
	}
	obs, err := h.ObserveRules6()
	if err != nil {
		t.Fatal(err)
	}
	if want := []PodRule{{IP: a, Table: 254}, {IP: a, Table: 1005}}; !slices.Equal(obs, want) {
		t.Errorf("ObserveRules6: %v, want %v", obs, want)
	}
}

// EnsureENIIPv6 puts back an ENI table's IPv6 routes someone flushed (weftd's host loop calls it every sync).
func TestEnsureENIIPv6Repairs(t *testing.T) {
	n := newTestNet(t)
	eni := addENI(t, n, "eni1")
	mustDo(t, n.host.LinkSetUp(eni))
	table := TableFor(1000, eni.Attrs().Index)
	var err error
	n.inHost(func() { err = Host{}.EnsureENIIPv6(eni.Attrs().Index, table, gw6, block6) })
	if err != nil {
		t.Fatal(err)
	}
	routes := func() []string {
		var out []string
		for _, r := range mustRoutes6(t, n.host, table) {
			out = append(out, routeString(r, "eni1"))
		}
		slices.Sort(out)
		return out
	}
	want := routes()
	if len(want) != 2 {
		t.Fatalf("table %d IPv6 routes %q, want the block and the default", table, want)
	}
	for _, r := range mustRoutes6(t, n.host, table) {
		mustDo(t, n.host.RouteDel(&r))
	}
	if got := routes(); len(got) != 0 {
		t.Fatalf("flush left %q", got)
	}
	n.inHost(func() { err = Host{}.EnsureENIIPv6(eni.Attrs().Index, table, gw6, block6) })
	if err != nil {
		t.Fatal(err)
	}
	if got := routes(); !slices.Equal(got, want) {
		t.Errorf("after the repair table %d IPv6 routes %q, want %q", table, got, want)
	}
}

func mustRoutes6(t *testing.T, h *netlink.Handle, table int) []netlink.Route {
	t.Helper()
	rs, err := h.RouteListFiltered(netlink.FAMILY_V6, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// ObservePods6 lists a dual-stack pod's /128 route through its host veth (and nothing of IPv4-only pods).
func TestObservePods6(t *testing.T) {
	n := newTestNet(t)
	p := n.testPod()
	p.IPv6 = pod6
	res, err := n.add(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Host{H: n.host}.ObservePods6()
	if err != nil {
		t.Fatal(err)
	}
	if want := []HostPod{{Veth: res.HostVeth, IP: pod6}}; !slices.Equal(got, want) {
		t.Errorf("ObservePods6: %v, want %v", got, want)
	}
}
