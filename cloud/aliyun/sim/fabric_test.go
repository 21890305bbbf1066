package sim

import (
	"os/exec"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/internal/testenv"
)

// Sync is cheap when nothing changed and when only addresses change: it runs no command then (routes and
// neighbours go through netlink), and the router holds exactly a /32 route and a permanent neighbour
// (address -> the ENI's MAC) per address of the ENI, nothing for an address unassigned, nothing once detached.
func TestFabricSyncIsIdempotentAndCheap(t *testing.T) {
	testenv.RequireRoot(t)
	r := newRig(t)
	fab, _ := newFabric(t, r, "as")
	ok := func(action string, p map[string]string) { t.Helper(); r.want("", action, p) }
	id, mac := r.attachENI(fab, map[string]string{"SecondaryPrivateIpAddressCount": "3"})
	sync := func() {
		t.Helper()
		if err := fab.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	h := routerHandle(t, fab)
	// state is the router's view of the ENI: address -> "route" and/or "neigh <mac>" (nothing once it is gone).
	state := func() map[string]string {
		out, _ := routerState(h, fab.enis[id].name, unix.AF_INET)
		return out
	}
	addrs := func() []string {
		e, _ := r.world.ENI(id)
		return append([]string{e.PrimaryIP}, e.Secondary...)
	}
	check := func(when string) {
		t.Helper()
		got, want := state(), addrs()
		if len(got) != len(want) {
			t.Fatalf("%s: router state %v, want exactly %v", when, got, want)
		}
		for _, a := range want {
			if got[a] != "route neigh "+mac {
				t.Fatalf("%s: router state of %s: %q, want a route and a permanent neighbour -> %s (all: %v)", when, a, got[a], mac, got)
			}
		}
	}
	check("attached")
	n := fab.commands
	for range 3 {
		sync()
	}
	check("after three more Syncs")
	if fab.commands != n {
		t.Fatalf("Syncs with nothing changed ran %d commands", fab.commands-n)
	}
	ok("AssignPrivateIpAddresses", map[string]string{"NetworkInterfaceId": id, "SecondaryPrivateIpAddressCount": "2"})
	sync()
	check("after assigning 2")
	gone := addrs()[2]
	ok("UnassignPrivateIpAddresses", map[string]string{"NetworkInterfaceId": id, "PrivateIpAddress.1": gone})
	sync()
	check("after unassigning " + gone)
	if s := state()[gone]; s != "" {
		t.Fatalf("unassigned %s still in the router: %q", gone, s)
	}
	if fab.commands != n {
		t.Fatalf("address changes ran %d commands (want netlink only)", fab.commands-n)
	}
	// A neighbour changed behind the fabric's back is repaired.
	link, _ := h.LinkByName(fab.enis[id].name)
	a := addrs()[1]
	if out, err := exec.Command("ip", "-n", fab.Router, "neigh", "replace", a, "lladdr", "02:00:00:00:00:01", "dev", link.Attrs().Name,
		"nud", "permanent").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	sync()
	check("after the neighbour of " + a + " was changed behind its back")
	ok("DetachNetworkInterface", map[string]string{"NetworkInterfaceId": id, "InstanceId": "i-alisim0001"})
	sync()
	if _, err := h.LinkByName(link.Attrs().Name); err == nil {
		t.Fatal("the ENI's veth survived the detach")
	}
	routes, _ := h.RouteListFiltered(unix.AF_INET, &netlink.Route{Protocol: fabricProto}, netlink.RT_FILTER_PROTOCOL)
	for _, rt := range routes {
		for _, a := range addrs() {
			if rt.Dst.IP.String() == a {
				t.Fatalf("route to %s left after the detach: %v", a, rt)
			}
		}
	}
}
