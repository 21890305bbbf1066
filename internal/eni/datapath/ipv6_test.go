package datapath

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/internal/nsutil"
	"github.com/weftnet/weft/internal/testenv"
)

var (
	pod6    = netip.MustParseAddr("2001:db8:9::5")
	gw6     = netip.MustParseAddr("2001:db8:9::1")
	block6  = netip.MustParsePrefix("2001:db8:9::/64")
	remote6 = netip.MustParseAddr("2001:db8:ff::10")
)

// rules6At lists h's IPv6 pod rules at prio.
func rules6At(t *testing.T, h *netlink.Handle, prio int) []string {
	t.Helper()
	rules, err := h.RuleListFiltered(netlink.FAMILY_V6, &netlink.Rule{Priority: prio}, netlink.RT_FILTER_PRIORITY)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rules {
		if k, ok := podRuleOf(r); ok {
			out = append(out, k.String())
		} else {
			out = append(out, r.String())
		}
	}
	slices.Sort(out)
	return out
}

// A dual-stack pod gets Terway's IPv6 datapath beside the IPv4 one, its traffic leaves through the ENI's table
// with its own IPv6 source, and Del removes the IPv6 rules too.
func TestIPv6Datapath(t *testing.T) {
	n := newTestNet(t)
	fabNs, fab := testenv.NewNetns(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(n.host.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eni1", TxQLen: -1}, PeerName: "gw0",
		PeerNamespace: netlink.NsFd(int(fabNs))}))
	eniLink := linkByName(t, n.host, "eni1")
	gw := linkByName(t, fab, "gw0")
	must(fab.AddrAdd(gw, &netlink.Addr{IPNet: ipNet("10.9.0.253/24")}))
	must(fab.AddrAdd(gw, &netlink.Addr{IPNet: ipNet(gw6.String() + "/64"), Flags: unix.IFA_F_NODAD}))
	must(fab.LinkSetUp(gw))
	lo := linkByName(t, fab, "lo")
	must(fab.LinkSetUp(lo))
	must(fab.AddrAdd(lo, &netlink.Addr{IPNet: ipNet(remote6.String() + "/128"), Flags: unix.IFA_F_NODAD}))
	// The fabric knows where the pod's IPv6 address lives: on the ENI's MAC (alisim's router does the same).
	must(fab.NeighAdd(&netlink.Neigh{LinkIndex: gw.Attrs().Index, Family: netlink.FAMILY_V6, State: netlink.NUD_PERMANENT,
		IP: net.IP(pod6.AsSlice()), HardwareAddr: eniLink.Attrs().HardwareAddr}))

	// As on a real node, the main table routes the vSwitch's IPv6 block through the primary interface.
	must(n.host.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0", TxQLen: -1}, PeerName: "eth0p"}))
	prim := linkByName(t, n.host, "eth0")
	must(n.host.LinkSetUp(prim))
	must(n.host.LinkSetUp(linkByName(t, n.host, "eth0p")))
	must(n.host.RouteAdd(&netlink.Route{LinkIndex: prim.Attrs().Index, Dst: ipNet(block6.String())}))

	var table int
	n.inHost(func() {
		h := Host{}
		table = TableFor(1000, eniLink.Attrs().Index)
		idx, err := h.EnsureENI(ENILink{MAC: eniLink.Attrs().HardwareAddr, Gateway: netip.MustParseAddr("10.9.0.253"),
			CIDR: netip.MustParsePrefix("10.9.0.0/24"), Table: table})
		if err == nil {
			err = h.EnsureENIIPv6(idx, table, gw6, block6)
		}
		if err == nil { // twice: idempotent
			err = h.EnsureENIIPv6(idx, table, gw6, block6)
		}
		if err != nil {
			t.Error(err)
		}
	})
	if t.Failed() {
		return
	}
	p := n.testPod()
	p.Table, p.IPv6 = table, pod6
	res, err := n.add(p)
	if err != nil {
		t.Fatal(err)
	}
	podLink := linkByName(t, n.pod, "eth0")
	hostIdx := linkByName(t, n.host, res.HostVeth).Attrs().Index

	// In the pod: the /128, default via fe80::1 on-link, fe80::1 a permanent neighbour at the host veth's MAC.
	addrs, _ := n.pod.AddrList(podLink, netlink.FAMILY_V6)
	if !slices.ContainsFunc(addrs, func(a netlink.Addr) bool { return a.IPNet.String() == pod6.String()+"/128" }) {
		t.Errorf("pod addresses %v lack %s/128", addrs, pod6)
	}
	routes, _ := n.pod.RouteList(podLink, netlink.FAMILY_V6)
	if !slices.ContainsFunc(routes, func(r netlink.Route) bool {
		return (r.Dst == nil || isDefault(r.Dst)) && r.Gw.Equal(net.ParseIP(GatewayV6))
	}) {
		t.Errorf("pod IPv6 routes %v lack default via %s", routes, GatewayV6)
	}
	neighs, _ := n.pod.NeighList(podLink.Attrs().Index, netlink.FAMILY_V6)
	if !slices.ContainsFunc(neighs, func(nb netlink.Neigh) bool {
		return nb.IP.Equal(net.ParseIP(GatewayV6)) && nb.State == netlink.NUD_PERMANENT && nb.HardwareAddr.String() == res.HostMAC.String()
	}) {
		t.Errorf("pod IPv6 neighbours %v lack %s permanent at %s", neighs, GatewayV6, res.HostMAC)
	}
	// On the host: the /128 to the veth, both IPv6 rules, the ENI table's default via the IPv6 gateway.
	if got, want := rules6At(t, n.host, 512), []string{"rule 512 to " + pod6.String() + "/128 lookup 254"}; !slices.Equal(got, want) {
		t.Errorf("IPv6 rules at 512: %q, want %q", got, want)
	}
	if got := rules6At(t, n.host, 2048); len(got) != 1 || !strings.Contains(got[0], "from "+pod6.String()+"/128 lookup") {
		t.Errorf("IPv6 rules at 2048: %q, want from %s/128 lookup %d", got, pod6, table)
	}
	rg, err := n.host.RouteGetWithOptions(net.IP(remote6.AsSlice()), &netlink.RouteGetOptions{IifIndex: hostIdx, SrcAddr: net.IP(pod6.AsSlice())})
	if err != nil || len(rg) != 1 || rg[0].LinkIndex != eniLink.Attrs().Index || !rg[0].Gw.Equal(net.IP(gw6.AsSlice())) || rg[0].Table != table {
		t.Errorf("route get %s from %s iif veth: %v (err %v), want via %s dev eni1 table %d", remote6, pod6, rg, err, gw6, table)
	}
	rg, err = n.host.RouteGetWithOptions(net.IP(pod6.AsSlice()), &netlink.RouteGetOptions{IifIndex: eniLink.Attrs().Index, SrcAddr: net.IP(remote6.AsSlice())})
	if err != nil || len(rg) != 1 || rg[0].LinkIndex != hostIdx {
		t.Errorf("route get %s iif eni1: %v (err %v), want dev %s", pod6, rg, err, res.HostVeth)
	}

	// Traffic: a UDP echo from the pod to the remote over IPv6 (retried: the ENI's link-local address, which
	// neighbour discovery of the gateway needs, may still be tentative).
	var srv net.PacketConn
	must(nsutil.Do(fabNs, func() error {
		var err error
		srv, err = net.ListenPacket("udp6", "["+remote6.String()+"]:0")
		return err
	}))
	defer srv.Close()
	from := make(chan net.Addr, 64)
	go func() {
		buf := make([]byte, 64)
		for {
			k, addr, err := srv.ReadFrom(buf)
			if err != nil {
				return
			}
			from <- addr
			_, _ = srv.WriteTo(buf[:k], addr)
		}
	}()
	var c net.Conn
	must(nsutil.Do(n.podNs, func() error {
		var err error
		c, err = net.Dial("udp6", srv.LocalAddr().String())
		return err
	}))
	defer c.Close()
	var echoed bool
	for deadline := time.Now().Add(20 * time.Second); !echoed && time.Now().Before(deadline); {
		_, _ = c.Write([]byte("weft6"))
		_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		buf := make([]byte, 64)
		if k, err := c.Read(buf); err == nil && string(buf[:k]) == "weft6" {
			echoed = true
		}
	}
	if !echoed {
		t.Logf("host:\n%s\nfab:\n%s\npod:\n%s", dump(t, n.host), dump(t, fab), dump(t, n.pod))
		t.Fatal("no IPv6 echo from the remote within 20s")
	}
	if a := <-from; a.(*net.UDPAddr).IP.String() != pod6.String() {
		t.Errorf("the remote saw the request from %v, want the pod's own address %s", a, pod6)
	}

	// Del with the pod's IPv6 address unknown (no prevResult): found from the veth's /128 route.
	q := p
	q.IP, q.IPv6 = netip.Addr{}, netip.Addr{}
	if err := n.del(q); err != nil {
		t.Fatal(err)
	}
	for _, prio := range []int{512, 2048} {
		if got := rules6At(t, n.host, prio); len(got) != 0 {
			t.Errorf("after Del, IPv6 rules at %d: %q", prio, got)
		}
	}
}

// A failure at any IPv6 step undoes all of Add, the IPv4 part included.
func TestIPv6AddRollback(t *testing.T) {
	for _, step := range []string{stepIPv6On, stepPodAddr6, stepPodDefault6, stepPodNeigh6, stepForward6, stepHostRoute6,
		stepHostNeigh6, stepRuleToPod6, stepRuleFromPod6} {
		t.Run(strings.ReplaceAll(step, " ", "_"), func(t *testing.T) {
			n := newTestNet(t)
			p := n.testPod()
			p.IPv6 = pod6
			addRule(t, n.host, podRule{Priority: 2048, IP: p.IP, Table: 999})                           // stale IPv4 rule, restored by the undo
			n.inHost(func() { _ = ensureSysctl(sysctlPath("ipv6", "conf", "all", "forwarding"), "1") }) // host-wide, stays
			hostBefore, podBefore := dump(t, n.host), dump(t, n.pod)
			stepHook = func(s string) error {
				if s == step {
					return errInjected
				}
				return nil
			}
			defer func() { stepHook = nil }()
			_, err := n.add(p)
			if err == nil || !strings.Contains(err.Error(), step) {
				t.Fatalf("Add failing at %q: %v", step, err)
			}
			sameDump(t, "host netns after the rollback", hostBefore, dump(t, n.host))
			sameDump(t, "pod netns after the rollback", podBefore, dump(t, n.pod))
		})
	}
}

func TestIPv6PodValidate(t *testing.T) {
	for _, a := range []string{"10.0.0.1", "fe80::2", "::", "ff02::1", "::ffff:10.0.0.1"} {
		p := Pod{ContainerID: "c", IfName: "eth0", IP: netip.MustParseAddr("10.9.0.5"), Netns: "/x", Table: 1005, IPv6: netip.MustParseAddr(a)}
		if err := p.withDefaults().validate(true); err == nil || !strings.Contains(err.Error(), "IPv6 "+a) {
			t.Errorf("IPv6 %s: %v, want refused naming it", a, err)
		}
	}
}
