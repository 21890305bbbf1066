package backend_test

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/backend"
	"github.com/weftnet/weft/backend/backendtest"
)

func mac(t *testing.T, s string) net.HardwareAddr {
	t.Helper()
	m, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// vxlanDev adds an up vxlan device on the node's eth0.
func vxlanDev(t *testing.T, n *backendtest.Node, name string, vni int) netlink.Link {
	t.Helper()
	if err := n.H.LinkAdd(&netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: name}, VxlanId: vni, Port: 8472,
		VtepDevIndex: n.Ext.Iface.Index, SrcAddr: net.IP(n.Ext.IfaceAddr.AsSlice())}); err != nil {
		t.Fatal(err)
	}
	l, err := n.H.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.H.LinkSetUp(l); err != nil {
		t.Fatal(err)
	}
	return l
}

func addNeigh(t *testing.T, n *backendtest.Node, link netlink.Link, fam int, ip, hw string, state int) {
	t.Helper()
	if err := n.H.NeighAdd(&netlink.Neigh{LinkIndex: link.Attrs().Index, Family: fam, State: state,
		IP: net.ParseIP(ip), HardwareAddr: mac(t, hw)}); err != nil {
		t.Fatalf("seed neighbour %s: %v", ip, err)
	}
}

func TestSyncNeigh(t *testing.T) {
	n := backendtest.NewNode(t, "10.9.0.2/24", "fd00:9::2/64")
	vx := vxlanDev(t, n, "vx0", 1)
	idx := vx.Attrs().Index
	addNeigh(t, n, vx, unix.AF_INET, "10.5.1.0", "0e:00:00:00:00:01", netlink.NUD_PERMANENT) // desired as is
	addNeigh(t, n, vx, unix.AF_INET, "10.5.2.0", "0e:00:00:00:00:99", netlink.NUD_PERMANENT) // desired, other MAC
	addNeigh(t, n, vx, unix.AF_INET, "10.5.3.0", "0e:00:00:00:00:03", netlink.NUD_PERMANENT) // owned, stale
	addNeigh(t, n, vx, unix.AF_INET, "10.5.4.0", "0e:00:00:00:00:04", netlink.NUD_STALE)     // the kernel's
	addNeigh(t, n, vx, unix.AF_INET, "10.5.5.0", "0e:00:00:00:00:55", netlink.NUD_STALE)     // the kernel's, desired
	addNeigh(t, n, vx, unix.AF_INET, "10.5.9.0", "0e:00:00:00:00:09", netlink.NUD_STALE)     // desired, not yet permanent
	addNeigh(t, n, vx, unix.AF_INET6, "fd00:5::3", "0e:00:00:00:01:03", netlink.NUD_PERMANENT)
	addNeigh(t, n, n.Link, unix.AF_INET, "10.9.0.50", "0e:00:00:00:00:50", netlink.NUD_PERMANENT)
	desired := []backend.Neigh{
		{IP: netip.MustParseAddr("10.5.1.0"), MAC: mac(t, "0e:00:00:00:00:01")},
		{IP: netip.MustParseAddr("10.5.2.0"), MAC: mac(t, "0e:00:00:00:00:02")},
		{IP: netip.MustParseAddr("10.5.5.0"), MAC: mac(t, "0e:00:00:00:00:05")},
		{IP: netip.MustParseAddr("10.5.6.0"), MAC: mac(t, "0e:00:00:00:00:06")},
		{IP: netip.MustParseAddr("10.5.6.0"), MAC: mac(t, "0e:00:00:00:00:66")}, // repeated: the first wins
		{IP: netip.MustParseAddr("10.5.9.0"), MAC: mac(t, "0e:00:00:00:00:09")},
	}
	want := []string{
		"10.5.1.0 lladdr 0e:00:00:00:00:01 PERMANENT",
		"10.5.2.0 lladdr 0e:00:00:00:00:02 PERMANENT",
		"10.5.4.0 lladdr 0e:00:00:00:00:04 STALE",
		"10.5.5.0 lladdr 0e:00:00:00:00:05 PERMANENT",
		"10.5.6.0 lladdr 0e:00:00:00:00:06 PERMANENT",
		"10.5.9.0 lladdr 0e:00:00:00:00:09 PERMANENT",
	}
	for run := 1; run <= 2; run++ { // the second run finds everything in place
		if err := backend.SyncNeigh(n.H, vx, unix.AF_INET, desired); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		backendtest.Equal(t, "IPv4 neighbours of vx0", n.NeighTable(t, idx, unix.AF_INET), want)
		backendtest.Equal(t, "IPv6 neighbours of vx0 (other family)", n.Neighbours(t, idx, unix.AF_INET6),
			[]string{"fd00:5::3 0e:00:00:00:01:03"})
		backendtest.Equal(t, "neighbours of eth0 (other device)", n.Neighbours(t, n.Ext.Iface.Index, unix.AF_INET),
			[]string{"10.9.0.50 0e:00:00:00:00:50"})
	}

	// A failing entry is reported by address and does not block the others.
	bad := []backend.Neigh{
		{IP: netip.MustParseAddr("10.5.7.0"), MAC: net.HardwareAddr{0x0e, 0, 7}}, // shorter than the device's address
		{IP: netip.MustParseAddr("10.5.8.0"), MAC: mac(t, "0e:00:00:00:00:08")},
	}
	err := backend.SyncNeigh(n.H, vx, unix.AF_INET, bad)
	if err == nil || !strings.Contains(err.Error(), "set neighbour 10.5.7.0") || !strings.Contains(err.Error(), "vx0") {
		t.Fatalf("err %v, want one naming neighbour 10.5.7.0 on vx0", err)
	}
	backendtest.Equal(t, "IPv4 neighbours after a failing entry", n.NeighTable(t, idx, unix.AF_INET), []string{
		"10.5.4.0 lladdr 0e:00:00:00:00:04 STALE",
		"10.5.8.0 lladdr 0e:00:00:00:00:08 PERMANENT",
	})
}

func addFDB(t *testing.T, n *backendtest.Node, link netlink.Link, hw, dst string, appendRemote bool) {
	t.Helper()
	e := &netlink.Neigh{LinkIndex: link.Attrs().Index, Family: unix.AF_BRIDGE, State: netlink.NUD_PERMANENT,
		Flags: netlink.NTF_SELF, IP: net.ParseIP(dst), HardwareAddr: mac(t, hw)}
	add := n.H.NeighAdd
	if appendRemote {
		add = n.H.NeighAppend
	}
	if err := add(e); err != nil {
		t.Fatalf("seed fdb %s dst %s: %v", hw, dst, err)
	}
}

func fdb(t *testing.T, hw, dst string) backend.FDB {
	return backend.FDB{MAC: mac(t, hw), Dst: netip.MustParseAddr(dst)}
}

func TestSyncFDB(t *testing.T) {
	n := backendtest.NewNode(t, "10.9.0.2/24", "")
	vx, other := vxlanDev(t, n, "vx0", 1), vxlanDev(t, n, "vx1", 2)
	idx := vx.Attrs().Index
	addFDB(t, n, vx, "00:00:00:00:00:00", "10.9.0.99", false) // default flooding entry: never ours
	addFDB(t, n, vx, "0e:00:00:00:00:01", "10.9.0.1", false)  // desired as is
	addFDB(t, n, vx, "0e:00:00:00:00:01", "10.9.0.11", true)  // a second remote of a desired MAC
	addFDB(t, n, vx, "0e:00:00:00:00:02", "10.9.0.22", false) // desired, other destination
	addFDB(t, n, vx, "0e:00:00:00:00:03", "10.9.0.3", false)  // stale
	addFDB(t, n, other, "0e:00:00:00:00:03", "10.9.0.3", false)
	desired := []backend.FDB{
		fdb(t, "0e:00:00:00:00:01", "10.9.0.1"),
		fdb(t, "0e:00:00:00:00:02", "10.9.0.2"),
		fdb(t, "0e:00:00:00:00:04", "10.9.0.4"),
		fdb(t, "0e:00:00:00:00:04", "10.9.0.44"), // repeated: the first wins
	}
	want := []string{
		"00:00:00:00:00:00 dst 10.9.0.99 self permanent",
		"0e:00:00:00:00:01 dst 10.9.0.1 self permanent",
		"0e:00:00:00:00:02 dst 10.9.0.2 self permanent",
		"0e:00:00:00:00:04 dst 10.9.0.4 self permanent",
	}
	for run := 1; run <= 2; run++ {
		if err := backend.SyncFDB(n.H, vx, desired); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		backendtest.Equal(t, "fdb of vx0", n.FDB(t, idx), want)
		backendtest.Equal(t, "fdb of vx1 (other device)", n.FDB(t, other.Attrs().Index),
			[]string{"0e:00:00:00:00:03 dst 10.9.0.3 self permanent"})
	}

	err := backend.SyncFDB(n.H, vx, []backend.FDB{
		{MAC: net.HardwareAddr{0x0e, 0, 5}, Dst: netip.MustParseAddr("10.9.0.5")}, // not an Ethernet address
		fdb(t, "0e:00:00:00:00:06", "10.9.0.6"),
	})
	if err == nil || !strings.Contains(err.Error(), "set fdb 0e:00:05 dst 10.9.0.5 on vx0") {
		t.Fatalf("err %v, want one naming fdb 0e:00:05 dst 10.9.0.5 on vx0", err)
	}
	backendtest.Equal(t, "fdb after a failing entry", n.FDB(t, idx), []string{
		"00:00:00:00:00:00 dst 10.9.0.99 self permanent",
		"0e:00:00:00:00:06 dst 10.9.0.6 self permanent",
	})
}

func route(dst, gw string, link int, onlink bool) netlink.Route {
	r := netlink.Route{Dst: backend.PrefixToIPNet(netip.MustParsePrefix(dst)), Gw: net.ParseIP(gw), LinkIndex: link}
	if onlink {
		r.Flags = int(netlink.FLAG_ONLINK)
	}
	return r
}

func TestSyncRoutes(t *testing.T) {
	n := backendtest.NewNode(t, "10.9.0.2/24", "")
	vx := vxlanDev(t, n, "vx0", 1)
	dev, ext := vx.Attrs().Index, n.Ext.Iface.Index
	for _, r := range []netlink.Route{
		route("10.5.1.0/24", "10.5.1.0", dev, true),   // desired as is
		route("10.5.2.0/24", "10.9.0.22", ext, false), // desired elsewhere
		route("10.5.3.0/24", "10.5.3.0", dev, true),   // owned, stale
		route("192.168.7.0/24", "10.9.0.7", ext, false),
	} {
		r := r
		if err := n.H.RouteAdd(&r); err != nil {
			t.Fatalf("seed route %s: %v", backend.RouteKey(r), err)
		}
	}
	cluster := netip.MustParsePrefix("10.5.0.0/16")
	owned := func(r netlink.Route) bool { return backend.InPrefix(r, cluster) }
	desired := []netlink.Route{route("10.5.1.0/24", "10.5.1.0", dev, true), route("10.5.2.0/24", "10.5.2.0", dev, true),
		route("10.5.4.0/24", "10.9.0.4", ext, false)}
	for run := 1; run <= 2; run++ {
		if err := backend.SyncRoutes(n.H, unix.AF_INET, desired, owned); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		backendtest.Equal(t, "routes", n.Routes(t, unix.AF_INET, 0), []string{
			"10.5.1.0/24 via 10.5.1.0 dev vx0 onlink",
			"10.5.2.0/24 via 10.5.2.0 dev vx0 onlink",
			"10.5.4.0/24 via 10.9.0.4 dev eth0",
			"192.168.7.0/24 via 10.9.0.7 dev eth0",
		})
	}
}

// An IPv6 route moving from the external link to an onlink route through a device: the kernel refuses to
// replace it in place (the onlink gateway resolves through the old route), so SyncRoutes deletes it first.
func TestSyncRoutesMovesIPv6RouteToAnotherDevice(t *testing.T) {
	n := backendtest.NewNode(t, "10.9.0.2/24", "fd00:9::2/64")
	vx := vxlanDev(t, n, "vx0", 1)
	dev, ext := vx.Attrs().Index, n.Ext.Iface.Index
	direct := route("fd00:5:0:7::/64", "fd00:9::7", ext, false)
	if err := n.H.RouteAdd(&direct); err != nil {
		t.Fatal(err)
	}
	cluster := netip.MustParsePrefix("fd00:5::/56")
	owned := func(r netlink.Route) bool { return backend.InPrefix(r, cluster) }
	if err := backend.SyncRoutes(n.H, unix.AF_INET6, []netlink.Route{route("fd00:5:0:7::/64", "fd00:5:0:7::", dev, true)}, owned); err != nil {
		t.Fatal(err)
	}
	backendtest.Equal(t, "IPv6 routes", n.Routes(t, unix.AF_INET6, 0), []string{"fd00:5:0:7::/64 via fd00:5:0:7:: dev vx0 onlink"})
	// And back: the direct route replaces the onlink one.
	if err := backend.SyncRoutes(n.H, unix.AF_INET6, []netlink.Route{direct}, owned); err != nil {
		t.Fatal(err)
	}
	backendtest.Equal(t, "IPv6 routes", n.Routes(t, unix.AF_INET6, 0), []string{"fd00:5:0:7::/64 via fd00:9::7 dev eth0"})
}
