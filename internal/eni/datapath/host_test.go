package datapath

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/internal/testenv"
)

// addENI puts a veth standing in for an ENI into the host namespace (its peer in a namespace of its own, so
// that the MAC is the host's only one), down, and returns it.
func addENI(t *testing.T, n *testNet, name string) netlink.Link {
	t.Helper()
	farNs, _ := testenv.NewNetns(t)
	if err := n.host.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name, TxQLen: -1}, PeerName: "far",
		PeerNamespace: netlink.NsFd(int(farNs))}); err != nil {
		t.Fatal(err)
	}
	return linkByName(t, n.host, name)
}

func tableRoutes(t *testing.T, h *netlink.Handle, table int) []string {
	t.Helper()
	rs, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rs {
		l, _ := h.LinkByIndex(r.LinkIndex)
		out = append(out, routeString(r, l.Attrs().Name)+" proto "+r.Protocol.String()+" scope "+r.Scope.String())
	}
	slices.Sort(out)
	return out
}

func TestLinkByMAC(t *testing.T) {
	n := newTestNet(t)
	eni := addENI(t, n, "eni1")
	h := Host{H: n.host}
	mac, _ := net.ParseMAC(strings.ToUpper(eni.Attrs().HardwareAddr.String()))
	l, err := h.LinkByMAC(mac)
	if err != nil || l.Attrs().Name != "eni1" {
		t.Fatalf("LinkByMAC(%s): %v, %v; want eni1", mac, l, err)
	}
	if _, err := h.LinkByMAC(net.HardwareAddr{2, 0, 0, 0, 0xee, 1}); !errors.Is(err, ErrNotFound) {
		t.Errorf("LinkByMAC of an absent MAC: %v, want ErrNotFound", err)
	}
	if _, err := h.LinkByMAC(net.HardwareAddr{1, 2}); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("LinkByMAC of a 2-byte MAC: %v, want a validation error", err)
	}
}

func TestEnsureENI(t *testing.T) {
	n := newTestNet(t)
	eni := addENI(t, n, "eni1")
	idx := eni.Attrs().Index
	table := TableFor(1000, idx)
	e := ENILink{MAC: eni.Attrs().HardwareAddr, Gateway: netip.MustParseAddr("10.9.0.253"),
		CIDR: netip.MustParsePrefix("10.9.0.0/24"), Table: table, MTU: 1450}
	ensure := func(what string) {
		t.Helper()
		var got int
		var err error
		n.inHost(func() { got, err = Host{}.EnsureENI(e) })
		if err != nil || got != idx {
			t.Fatalf("EnsureENI (%s): ifindex %d, %v; want %d", what, got, err, idx)
		}
	}
	wantRoutes := []string{
		"10.9.0.0/24 dev eni1 table " + strconv.Itoa(table) + " proto 87 scope link",
		"default via 10.9.0.253 dev eni1 onlink table " + strconv.Itoa(table) + " proto 87 scope universe",
	}
	checkTable := func(what string, want []string) {
		t.Helper()
		if got := tableRoutes(t, n.host, table); !slices.Equal(got, want) {
			t.Errorf("%s: table %d holds %q, want %q", what, table, got, want)
		}
	}
	// Make the ENI's rp_filter strict first, as a distribution might.
	n.inHost(func() {
		if err := ensureSysctl(sysctlPath("ipv4", "conf", "eni1", "rp_filter"), "1"); err != nil {
			t.Error(err)
		}
	})

	ensure("first")
	l := linkByName(t, n.host, "eni1")
	if l.Attrs().Flags&net.FlagUp == 0 || l.Attrs().MTU != 1450 {
		t.Errorf("eni1 flags %v mtu %d, want up with MTU 1450", l.Attrs().Flags, l.Attrs().MTU)
	}
	if v := readSysctlIn(t, n.hostNs, sysctlPath("ipv4", "conf", "eni1", "rp_filter")); v != "0" {
		t.Errorf("eni1 rp_filter %s, want 0", v)
	}
	checkTable("after the first EnsureENI", wantRoutes)

	before := dump(t, n.host)
	ensure("again")
	sameDump(t, "host netns after a second EnsureENI", before, dump(t, n.host))

	// Drift: a wrong default route, a stale route of weft's, and someone else's route in the table.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(n.host.RouteReplace(&netlink.Route{LinkIndex: idx, Gw: net.ParseIP("10.9.0.1"), Flags: int(netlink.FLAG_ONLINK),
		Table: table, Protocol: RouteProtocol}))
	must(n.host.RouteAdd(&netlink.Route{LinkIndex: idx, Dst: ipNet("10.60.0.0/16"), Scope: netlink.SCOPE_LINK, Table: table,
		Protocol: RouteProtocol}))
	must(n.host.RouteAdd(&netlink.Route{LinkIndex: idx, Dst: ipNet("10.50.0.0/16"), Scope: netlink.SCOPE_LINK, Table: table,
		Protocol: unix.RTPROT_STATIC}))
	ensure("after drift")
	checkTable("after repairing drift", append([]string{"10.50.0.0/16 dev eni1 table " + strconv.Itoa(table) + " proto static scope link"}, wantRoutes...))
	must(n.host.RouteDel(&netlink.Route{LinkIndex: idx, Dst: ipNet("10.50.0.0/16"), Scope: netlink.SCOPE_LINK, Table: table,
		Protocol: unix.RTPROT_STATIC}))

	// Drift: the default route deleted.
	must(n.host.RouteDel(&netlink.Route{LinkIndex: idx, Gw: net.ParseIP("10.9.0.253"), Table: table}))
	checkTable("with the default route deleted", wantRoutes[:1])
	ensure("after the default route was deleted")
	checkTable("after restoring the default route", wantRoutes)

	// Drift: the link set down, which takes its routes.
	must(n.host.LinkSetDown(l))
	checkTable("with the link down", nil)
	ensure("after the link went down")
	if l := linkByName(t, n.host, "eni1"); l.Attrs().Flags&net.FlagUp == 0 {
		t.Error("eni1 still down")
	}
	checkTable("after bringing the link back", wantRoutes)

	// Absent ENI.
	e2 := e
	e2.MAC = net.HardwareAddr{2, 0, 0, 0, 0xee, 1}
	var err error
	n.inHost(func() { _, err = Host{}.EnsureENI(e2) })
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("EnsureENI of an absent MAC: %v, want ErrNotFound", err)
	}
	// A handle of the caller's namespace is fine; one of another namespace cannot have its sysctls set.
	n.inHost(func() { _, err = Host{H: n.host}.EnsureENI(e) })
	if err != nil {
		t.Errorf("EnsureENI with a handle of the calling thread's netns: %v", err)
	}
	if _, err := (Host{H: n.host}).EnsureENI(e); err == nil || !strings.Contains(err.Error(), "Host.H") {
		t.Errorf("EnsureENI from another netns than H's: %v, want a refusal naming Host.H", err)
	}
}

func TestObserve(t *testing.T) {
	n := newTestNet(t)
	a := n.testPod()
	b := n.testPod()
	b.ContainerID, b.IP, b.Table = "fedcba9876543210", netip.MustParseAddr("10.9.0.6"), 1006
	bNs, _ := testenv.NewNetns(t)
	b.Netns = fmt.Sprintf("/proc/self/fd/%d", int(bNs))
	for _, p := range []Pod{a, b} {
		if _, err := n.add(p); err != nil {
			t.Fatal(err)
		}
	}
	// Not ours: a veth of another name with a /32 route, a foreign rule at another priority.
	if err := n.host.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "vethother", TxQLen: -1}, PeerName: "vethother2"}); err != nil {
		t.Fatal(err)
	}
	other := linkByName(t, n.host, "vethother")
	if err := n.host.LinkSetUp(other); err != nil {
		t.Fatal(err)
	}
	if err := n.host.RouteAdd(&netlink.Route{LinkIndex: other.Attrs().Index, Dst: host32(netip.MustParseAddr("10.9.0.99")), Scope: netlink.SCOPE_LINK}); err != nil {
		t.Fatal(err)
	}
	addRule(t, n.host, podRule{Priority: 1000, IP: netip.MustParseAddr("10.9.9.9"), Table: 77})
	// Ours without a route: a remnant (or an Add under way).
	bare := HostVethName("remnant", "eth0")
	if err := n.host.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: bare, TxQLen: -1}, PeerName: "bare2"}); err != nil {
		t.Fatal(err)
	}

	var o Observed
	var err error
	n.inHost(func() { o, err = Host{}.Observe() })
	if err != nil {
		t.Fatal(err)
	}
	wantPods := []HostPod{{Veth: HostVethName(a.ContainerID, a.IfName), IP: a.IP}, {Veth: HostVethName(b.ContainerID, b.IfName), IP: b.IP},
		{Veth: bare}}
	slices.SortFunc(wantPods, func(x, y HostPod) int { return strings.Compare(x.Veth, y.Veth) })
	if !slices.Equal(o.Pods, wantPods) {
		t.Errorf("Observe pods %v, want %v", o.Pods, wantPods)
	}
	wantRules := []PodRule{{a.IP, 254}, {a.IP, 1005}, {b.IP, 254}, {b.IP, 1006}}
	if !slices.Equal(o.Rules, wantRules) {
		t.Errorf("Observe rules %v, want %v", o.Rules, wantRules)
	}
	// Other priorities: none of these rules are at them.
	n.inHost(func() { o, err = Host{Rules: Rules{ToPod: 600, FromPod: 700}}.Observe() })
	if err != nil || len(o.Rules) != 0 {
		t.Errorf("Observe at priorities 600/700: %v, %v; want no rules", o.Rules, err)
	}
}

func TestSyncRules(t *testing.T) {
	n := newTestNet(t)
	ip := netip.MustParseAddr
	addRule(t, n.host, podRule{Priority: 1000, IP: ip("10.9.0.5"), Table: 77})           // foreign, other priority
	addRule(t, n.host, podRule{Priority: 512, To: true, IP: ip("10.9.0.5"), Table: 254}) // wanted, there
	addRule(t, n.host, podRule{Priority: 2048, IP: ip("10.9.0.7"), Table: 1003})         // stale
	addRule(t, n.host, podRule{Priority: 2048, IP: ip("10.9.0.5"), Table: 1003})         // wrong table
	iif := netlink.NewRule()
	iif.Priority, iif.Table, iif.IifName, iif.Family = 512, 100, "eth9", netlink.FAMILY_V4 // not pod-shaped
	if err := n.host.RuleAdd(iif); err != nil {
		t.Fatal(err)
	}
	v6 := netlink.NewRule()
	v6.Priority, v6.Table, v6.Src = 2048, 1005, &net.IPNet{IP: net.ParseIP("fd00::5"), Mask: net.CIDRMask(128, 128)}
	if err := n.host.RuleAdd(v6); err != nil {
		t.Fatal(err)
	}
	foreignBefore := rulesAt(t, n.host, 1000)
	v6Before, _ := n.host.RuleListFiltered(netlink.FAMILY_V6, nil, 0)

	want := []PodRule{{ip("10.9.0.5"), 1005}, {ip("10.9.0.6"), 1006}, {ip("10.9.0.5"), 1005}}
	sync := func(h Host, w []PodRule) error {
		var err error
		n.inHost(func() { err = h.SyncRules(w, nil) })
		return err
	}
	if err := sync(Host{}, want); err != nil {
		t.Fatal(err)
	}
	if got := rulesAt(t, n.host, 512); !slices.Equal(got, []string{"rule 512 to 10.9.0.5/32 lookup 254", "rule 512 to 10.9.0.6/32 lookup 254"}) {
		t.Errorf("rules at 512: %q", got)
	}
	if got := rulesAt(t, n.host, 2048); !slices.Equal(got, []string{"rule 2048 from 10.9.0.5/32 lookup 1005", "rule 2048 from 10.9.0.6/32 lookup 1006"}) {
		t.Errorf("rules at 2048: %q", got)
	}
	if got := rulesAt(t, n.host, 1000); !slices.Equal(got, foreignBefore) {
		t.Errorf("the foreign rule at 1000: %q, was %q", got, foreignBefore)
	}
	if v6After, _ := n.host.RuleListFiltered(netlink.FAMILY_V6, nil, 0); len(v6After) != len(v6Before) {
		t.Errorf("IPv6 rules %v, were %v", v6After, v6Before)
	}
	before := dump(t, n.host)
	if err := sync(Host{}, want); err != nil {
		t.Fatal(err)
	}
	sameDump(t, "host netns after a second SyncRules", before, dump(t, n.host))

	// An invalid want changes nothing.
	if err := sync(Host{}, []PodRule{{ip("10.9.0.8"), 1005}, {ip("10.9.0.8"), 1006}}); err == nil || !strings.Contains(err.Error(), "10.9.0.8") {
		t.Errorf("SyncRules with an address on two tables: %v", err)
	}
	if err := sync(Host{}, []PodRule{{ip("10.9.0.8"), 254}}); err == nil || !strings.Contains(err.Error(), "Table 254") {
		t.Errorf("SyncRules with table main: %v", err)
	}
	sameDump(t, "host netns after refused SyncRules", before, dump(t, n.host))

	// A held address (a pod whose ADD is under way) keeps the rule the plugin has added so far, and gets none
	// from the sync; the rest goes as usual.
	held := podRule{Priority: 512, To: true, IP: ip("10.9.0.9"), Table: 254}
	addRule(t, n.host, held)
	var err error
	n.inHost(func() { err = Host{}.SyncRules([]PodRule{{ip("10.9.0.5"), 1005}}, []netip.Addr{ip("10.9.0.9")}) })
	if err != nil {
		t.Fatal(err)
	}
	if got := rulesAt(t, n.host, 512); !slices.Equal(got, []string{"rule 512 to 10.9.0.5/32 lookup 254", "rule 512 to 10.9.0.9/32 lookup 254"}) {
		t.Errorf("rules at 512 with 10.9.0.9 held: %q", got)
	}
	if got := rulesAt(t, n.host, 2048); !slices.Equal(got, []string{"rule 2048 from 10.9.0.5/32 lookup 1005"}) {
		t.Errorf("rules at 2048 with 10.9.0.9 held: %q", got)
	}

	// Nothing wanted: both priorities emptied, 1000 still untouched.
	if err := sync(Host{H: n.host}, nil); err != nil {
		t.Fatal(err)
	}
	if got := append(rulesAt(t, n.host, 512), rulesAt(t, n.host, 2048)...); len(got) != 0 {
		t.Errorf("rules at 512/2048 with nothing wanted: %q", got)
	}
	if got := rulesAt(t, n.host, 1000); !slices.Equal(got, foreignBefore) {
		t.Errorf("the foreign rule at 1000: %q, was %q", got, foreignBefore)
	}
}
