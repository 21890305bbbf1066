package sim

import (
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/internal/testenv"
)

// An ENI's IPv6 addresses become router /128 routes and permanent neighbours at the ENI's MAC, the ENI's veth
// carries the vSwitch's IPv6 gateway, and traffic from an ENI IPv6 address to the gateway and back works; an
// unassigned IPv6 address leaves the router.
func TestFabricENIIPv6(t *testing.T) {
	testenv.RequireRoot(t)
	r := newRig(t)
	r.world.EnableIPv6("vsw-alisim0001", "2408:4005:300:a100::/64")
	fab, _ := newFabric(t, r, "a6")
	id, mac := r.attachENI(fab, map[string]string{"Ipv6AddressCount": "2"})
	h := routerHandle(t, fab)
	e, _ := r.world.ENI(id)
	if len(e.IPv6) != 2 || e.IPv6[0] == "2408:4005:300:a100::1" || e.IPv6[1] == "2408:4005:300:a100::1" {
		t.Fatalf("ENI %+v: want 2 IPv6 addresses, not the vSwitch's gateway ::1", e)
	}
	state := func() map[string]string {
		t.Helper()
		out, err := routerState(h, fab.enis[id].name, unix.AF_INET6)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	got := state()
	for _, a := range e.IPv6 {
		if got[a] != "route neigh "+mac {
			t.Fatalf("router IPv6 state of %s: %q, want a /128 route and a permanent neighbour -> %s (all %v)", a, got[a], mac, got)
		}
	}
	if len(got) != 2 {
		t.Fatalf("router IPv6 state %v, want exactly the ENI's 2 addresses", got)
	}
	link, _ := h.LinkByName(fab.enis[id].name)
	addrs, _ := h.AddrList(link, netlink.FAMILY_V6)
	hasGw := false
	for _, a := range addrs {
		hasGw = hasGw || a.IPNet.String() == "2408:4005:300:a100::1/128"
	}
	if !hasGw {
		t.Fatalf("ENI veth addresses %v lack the vSwitch IPv6 gateway", addrs)
	}
	n := fab.commands
	if err := fab.Sync(); err != nil {
		t.Fatal(err)
	}
	if fab.commands != n {
		t.Fatalf("a Sync with nothing changed ran %d commands", fab.commands-n)
	}

	// Traffic: the instance uses one ENI IPv6 address through the ENI and pings the gateway.
	ns := fab.NS["i-alisim0001"]
	dev := "eth" + strconv.Itoa(e.DeviceIndex)
	for _, c := range [][]string{
		{"ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf." + dev + ".disable_ipv6=0"},
		{"ip", "-n", ns, "link", "set", dev, "up"},
		{"ip", "-n", ns, "addr", "add", e.IPv6[0] + "/128", "dev", dev, "nodad"},
		{"ip", "-n", ns, "-6", "route", "replace", "2408:4005:300:a100::1/128", "dev", dev},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", c, err, out)
		}
	}
	if out, err := exec.Command("ip", "netns", "exec", ns, "ping", "-6", "-c", "1", "-w", "10", "-I", e.IPv6[0], "2408:4005:300:a100::1").CombinedOutput(); err != nil {
		t.Fatalf("ping the IPv6 gateway through the ENI: %v: %s", err, out)
	}

	r.want("", "UnassignIpv6Addresses", map[string]string{"NetworkInterfaceId": id, "Ipv6Address.1": e.IPv6[1]})
	if err := fab.Sync(); err != nil {
		t.Fatal(err)
	}
	if s := state()[e.IPv6[1]]; s != "" {
		t.Fatalf("unassigned %s still in the router: %q", e.IPv6[1], s)
	}
}

// A host of the ENI's own vSwitch IPv6 block reaches an ENI IPv6 address: it solicits the address on the segment
// and the vSwitch's bridge answers (proxy NDP), as it answers ARP for ENI IPv4 addresses, and the reply, sent
// on-link through the ENI, finds the host because the ENI's veth answers for it; the proxy entry goes with the
// address.
func TestFabricENIIPv6SameBlock(t *testing.T) {
	testenv.RequireRoot(t)
	r := newRig(t)
	r.world.EnableIPv6("vsw-alisim0001", "2408:4005:300:a100::/64")
	r.world.mu.Lock()
	r.world.st.Instances[2].PrimaryIPv6 = "2408:4005:300:a100::12" // i-alisim0003, vsw-alisim0001 as i-alisim0001
	r.world.mu.Unlock()
	fab, _ := newFabric(t, r, "a7")
	code, body := r.call("CreateNetworkInterface", map[string]string{"VSwitchId": "vsw-alisim0001", "SecurityGroupIds.1": "sg-alisim0001",
		"Ipv6AddressCount": "1"})
	if code != 200 {
		t.Fatalf("CreateNetworkInterface: %d %v", code, body)
	}
	id := body["NetworkInterfaceId"].(string)
	if code, body := r.call("AttachNetworkInterface", map[string]string{"NetworkInterfaceId": id, "InstanceId": "i-alisim0001"}); code != 200 {
		t.Fatalf("AttachNetworkInterface: %d %v", code, body)
	}
	if err := fab.Sync(); err != nil {
		t.Fatal(err)
	}
	e, _ := r.world.ENI(id)
	ns := fab.NS["i-alisim0001"]
	dev := "eth" + strconv.Itoa(e.DeviceIndex)
	for _, c := range [][]string{
		{"ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf." + dev + ".disable_ipv6=0"},
		{"ip", "-n", ns, "link", "set", dev, "up"},
		{"ip", "-n", ns, "addr", "add", e.IPv6[0] + "/128", "dev", dev, "nodad"},
		// As weft's ENI table: the block on-link through the ENI, so the reply to a host of the block is sent on-link
		// and the ENI's veth must answer for that host.
		{"ip", "-n", ns, "-6", "route", "replace", "2408:4005:300:a100::/64", "dev", dev},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", c, err, out)
		}
	}
	other := fab.NS["i-alisim0003"]
	if out, err := exec.Command("ip", "netns", "exec", other, "ping", "-6", "-c", "1", "-w", "10", e.IPv6[0]).CombinedOutput(); err != nil {
		nb, _ := exec.Command("ip", "-n", other, "-6", "neigh").CombinedOutput()
		px, _ := exec.Command("ip", "-n", fab.Router, "-6", "neigh", "show", "proxy").CombinedOutput()
		t.Fatalf("a host of the block pings the ENI IPv6 address %s: %v: %s\nits neighbours:\n%s\nrouter proxy entries:\n%s", e.IPv6[0], err, out, nb, px)
	}
	n := fab.commands
	if err := fab.Sync(); err != nil {
		t.Fatal(err)
	}
	if fab.commands != n {
		t.Fatalf("a Sync with nothing changed ran %d commands", fab.commands-n)
	}
	if code, body := r.call("UnassignIpv6Addresses", map[string]string{"NetworkInterfaceId": id, "Ipv6Address.1": e.IPv6[0]}); code != 200 {
		t.Fatalf("UnassignIpv6Addresses: %d %v", code, body)
	}
	if err := fab.Sync(); err != nil {
		t.Fatal(err)
	}
	if out, _ := exec.Command("ip", "-n", fab.Router, "-6", "neigh", "show", "proxy").CombinedOutput(); strings.Contains(string(out), e.IPv6[0]) {
		t.Fatalf("the unassigned %s is still answered for:\n%s", e.IPv6[0], out)
	}
}

// proxyWant: the bridge answers for the ENIs' IPv6 addresses of its vSwitch, an ENI's veth for the other IPv6
// addresses of its vSwitch (instances' primaries, other ENIs'), never for its own, nothing across vSwitches.
func TestProxyWant(t *testing.T) {
	inst := map[string]*Instance{
		"i-1": {ID: "i-1", VSwitchID: "vsw-a", PrimaryIPv6: "2001:db8:a::10"},
		"i-2": {ID: "i-2", VSwitchID: "vsw-b", PrimaryIPv6: "2001:db8:b::11"},
		"i-3": {ID: "i-3", VSwitchID: "vsw-a"},
	}
	enis := []ENI{
		{ID: "eni-1", VSwitchID: "vsw-a", IPv6: []string{"2001:db8:a::2"}},
		{ID: "eni-2", VSwitchID: "vsw-a", IPv6: []string{"2001:db8:a::3"}},
		{ID: "eni-3", VSwitchID: "vsw-a"}, // IPv4 only: its veth answers nothing
		{ID: "eni-4", VSwitchID: "vsw-b", IPv6: []string{"2001:db8:b::4"}},
	}
	got := proxyWant(enis, inst, map[string]int{"vsw-a": 1, "vsw-b": 2}, map[string]int{"eni-1": 11, "eni-2": 12, "eni-3": 13, "eni-4": 14})
	var list []string
	for k := range got {
		list = append(list, strconv.Itoa(k.link)+" "+k.ip)
	}
	slices.Sort(list)
	want := []string{"1 2001:db8:a::2", "1 2001:db8:a::3", "11 2001:db8:a::10", "11 2001:db8:a::3", "12 2001:db8:a::10",
		"12 2001:db8:a::2", "14 2001:db8:b::11", "2 2001:db8:b::4"}
	if !slices.Equal(list, want) {
		t.Errorf("proxyWant:\n%q\nwant\n%q", list, want)
	}
}
