package sim

import (
	"os/exec"
	"strconv"
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
