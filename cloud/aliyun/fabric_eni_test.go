package aliyun_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/cloud/aliyun/sim"
	"github.com/weftnet/weft/internal/nsutil"
	"github.com/weftnet/weft/internal/testenv"
)

// A pod on a secondary address of an ENI is reachable from another instance only while that address is
// assigned to the ENI, through the ENI's link; unassigned it is not routed although the pod still holds it;
// assigned to another ENI of the same instance (and the instance's policy routing moved to that ENI) it is
// reachable again. The router knows each ENI address by a permanent neighbour entry, as the VPC does.
func TestFabricPodOnSecondaryAddress(t *testing.T) {
	testenv.RequireRoot(t)
	f := newFixture(t, sim.DefaultTiming, nil)
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	fab, err := sim.NewFabric(f.world, "ap"+hex.EncodeToString(b))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fab.Close)
	cl := ecsClient(t, f)
	ctx := context.Background()
	const inst = "i-alisim0001" // 192.168.0.10 on vsw-alisim0001; i-alisim0002 is 192.168.1.11 on the other vSwitch
	n1, n2 := fab.NS[inst], fab.NS["i-alisim0002"]
	attach := func(secondary int) aliyun.ENI {
		t.Helper()
		e, err := cl.CreateENI(ctx, aliyun.NewENI{VSwitchID: "vsw-alisim0001", SecurityGroupIDs: []string{"sg-alisim0001"}, SecondaryIPs: secondary})
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.AttachENI(ctx, inst, e.ID); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(2 * time.Second)
		if err := fab.Sync(); err != nil {
			t.Fatal(err)
		}
		return e
	}
	sync := func() {
		t.Helper()
		if err := fab.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	eni1 := attach(1)
	podIP := eni1.Secondary[0]
	eni2 := attach(0) // now, so that it does not take the address freed below as its primary
	gw := "192.168.0.253"

	h1 := nsHandle(t, n1)
	link := func(mac string) netlink.Link {
		t.Helper()
		links, err := h1.LinkList()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range links {
			if l.Attrs().HardwareAddr.String() == mac {
				return l
			}
		}
		t.Fatalf("no link with the ENI's MAC %s in %s", mac, n1)
		return nil
	}
	// The instance side, as weftd's datapath would set it up (minimal): the ENI up, a table per ENI with the
	// default route via the vSwitch gateway on that ENI; the pod behind a veth with its /32 route and the two rules.
	table := func(l netlink.Link, id int) {
		t.Helper()
		if err := h1.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
		if out, err := nsRun(t, n1, "sysctl", "-qw", "net.ipv4.conf."+l.Attrs().Name+".rp_filter=0"); err != nil {
			t.Fatal(out)
		}
		r := &netlink.Route{LinkIndex: l.Attrs().Index, Gw: net.ParseIP(gw), Table: id, Flags: int(netlink.FLAG_ONLINK)}
		if err := h1.RouteReplace(r); err != nil {
			t.Fatalf("table %d: %v", id, err)
		}
	}
	if out, err := nsRun(t, n1, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"); err != nil {
		t.Fatal(out)
	}
	table(link(eni1.MAC), 1001)

	podNS, podH := testenv.NewNetns(t)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "wentest"}, PeerName: "wenpeer"}
	if err := h1.LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	peer, err := h1.LinkByName("wenpeer")
	if err != nil {
		t.Fatal(err)
	}
	if err := h1.LinkSetNsFd(peer, int(podNS)); err != nil {
		t.Fatal(err)
	}
	hostVeth, err := h1.LinkByName("wentest")
	if err != nil {
		t.Fatal(err)
	}
	if err := h1.LinkSetUp(hostVeth); err != nil {
		t.Fatal(err)
	}
	pod32 := &net.IPNet{IP: podIP.AsSlice(), Mask: net.CIDRMask(32, 32)}
	if err := h1.RouteAdd(&netlink.Route{LinkIndex: hostVeth.Attrs().Index, Dst: pod32, Scope: netlink.SCOPE_LINK}); err != nil {
		t.Fatal(err)
	}
	toPod := netlink.NewRule()
	toPod.Priority, toPod.Dst, toPod.Table = 512, pod32, unix.RT_TABLE_MAIN
	fromPod := netlink.NewRule()
	fromPod.Priority, fromPod.Src, fromPod.Table = 2048, pod32, 1001
	for _, r := range []*netlink.Rule{toPod, fromPod} {
		if err := h1.RuleAdd(r); err != nil {
			t.Fatal(err)
		}
	}
	podEth, err := podH.LinkByName("wenpeer")
	if err == nil {
		err = podH.LinkSetName(podEth, "eth0")
	}
	if err != nil {
		t.Fatal(err)
	}
	gwLL := &net.IPNet{IP: net.ParseIP("169.254.1.1"), Mask: net.CIDRMask(32, 32)}
	for _, step := range []error{
		podH.AddrAdd(podEth, &netlink.Addr{IPNet: pod32}),
		podH.LinkSetUp(podEth),
		podH.RouteAdd(&netlink.Route{LinkIndex: podEth.Attrs().Index, Dst: gwLL, Scope: netlink.SCOPE_LINK}),
		podH.RouteAdd(&netlink.Route{LinkIndex: podEth.Attrs().Index, Gw: gwLL.IP}),
		podH.NeighSet(&netlink.Neigh{LinkIndex: podEth.Attrs().Index, Family: unix.AF_INET, State: netlink.NUD_PERMANENT,
			IP: gwLL.IP, HardwareAddr: hostVeth.Attrs().HardwareAddr}),
	} {
		if step != nil {
			t.Fatalf("pod setup: %v", step)
		}
	}
	podAddr := netip.AddrPortFrom(podIP, 8080)
	var ln net.Listener
	if err := nsutil.Do(podNS, func() (err error) { ln, err = net.Listen("tcp", podAddr.String()); return err }); err != nil {
		t.Fatal(err)
	}
	serve(t, ln)

	neigh := func(ip netip.Addr) string {
		out, _ := exec.Command("ip", "-n", fab.Router, "neigh", "show", ip.String()).CombinedOutput()
		return strings.TrimSpace(string(out))
	}
	if err := reach(n2, netip.Addr{}, podAddr); err != nil {
		t.Fatalf("another instance does not reach the pod on %s of %s: %v (router neighbour: %q)", podIP, eni1.ID, err, neigh(podIP))
	}
	if n := neigh(podIP); !strings.Contains(n, eni1.MAC) || !strings.Contains(n, "PERMANENT") {
		t.Fatalf("router neighbour of %s: %q, want PERMANENT -> %s", podIP, n, eni1.MAC)
	}
	sync() // nothing changed: still reachable
	if err := reach(n2, netip.Addr{}, podAddr); err != nil {
		t.Fatalf("a second Sync broke the path: %v", err)
	}

	if err := cl.UnassignIPs(ctx, eni1.ID, []netip.Addr{podIP}); err != nil {
		t.Fatal(err)
	}
	sync()
	if !unreachable(n2, netip.Addr{}, podAddr) {
		t.Fatalf("the pod on %s is reachable after the address was unassigned", podIP)
	}
	if n := neigh(podIP); strings.Contains(n, "PERMANENT") || strings.Contains(n, eni1.MAC) {
		t.Fatalf("router neighbour of an unassigned address: %q (the router may only try ARP on the vSwitch bridge, unanswered)", n)
	}
	routes, _ := exec.Command("ip", "-n", fab.Router, "route", "show", podIP.String()).CombinedOutput()
	if len(strings.TrimSpace(string(routes))) != 0 {
		t.Fatalf("router route of an unassigned address: %q", routes)
	}

	if err := cl.AssignSpecificIPs(ctx, eni2.ID, []netip.Addr{podIP}); err != nil {
		t.Fatal(err)
	}
	sync()
	table(link(eni2.MAC), 1002)
	if err := h1.RuleDel(fromPod); err != nil {
		t.Fatal(err)
	}
	fromPod.Table = 1002
	if err := h1.RuleAdd(fromPod); err != nil {
		t.Fatal(err)
	}
	if err := reach(n2, netip.Addr{}, podAddr); err != nil {
		t.Fatalf("the pod is not reachable on %s re-assigned to %s: %v (router neighbour: %q)", podIP, eni2.ID, err, neigh(podIP))
	}
	if n := neigh(podIP); !strings.Contains(n, eni2.MAC) || strings.Contains(n, eni1.MAC) {
		t.Fatalf("router neighbour of %s after the move: %q, want only -> %s", podIP, n, eni2.MAC)
	}
}

// nsHandle is a netlink handle into a named namespace, closed with the test.
func nsHandle(t *testing.T, name string) *netlink.Handle {
	t.Helper()
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(); ns.Close() })
	return h
}
