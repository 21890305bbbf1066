package datapath

import (
	"bytes"
	"errors"
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

func TestAddBuildsDatapath(t *testing.T) {
	n := newTestNet(t)
	p := n.testPod()
	res, err := n.add(p)
	if err != nil {
		t.Fatal(err)
	}
	veth := HostVethName(p.ContainerID, p.IfName)
	hl := linkByName(t, n.host, veth)
	pl := linkByName(t, n.pod, "eth0")
	if res.HostVeth != veth || !bytes.Equal(res.HostMAC, hl.Attrs().HardwareAddr) || !bytes.Equal(res.PodMAC, pl.Attrs().HardwareAddr) {
		t.Errorf("Result %+v, want host veth %s MAC %s, pod MAC %s", res, veth, hl.Attrs().HardwareAddr, pl.Attrs().HardwareAddr)
	}
	for _, l := range []netlink.Link{hl, pl} {
		if l.Type() != "veth" || l.Attrs().MTU != 1400 || l.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("%s: type %s mtu %d flags %v, want an up veth of MTU 1400", l.Attrs().Name, l.Type(), l.Attrs().MTU, l.Attrs().Flags)
		}
	}
	if pl.Attrs().ParentIndex != hl.Attrs().Index {
		t.Errorf("pod eth0's peer is ifindex %d, want the host veth %d", pl.Attrs().ParentIndex, hl.Attrs().Index)
	}

	// Pod side.
	addrs, _ := n.pod.AddrList(pl, netlink.FAMILY_V4)
	if len(addrs) != 1 || addrs[0].IPNet.String() != "10.9.0.5/32" {
		t.Errorf("pod addresses %v, want 10.9.0.5/32", addrs)
	}
	routes, _ := n.pod.RouteList(pl, netlink.FAMILY_V4)
	var got []string
	for _, r := range routes {
		got = append(got, routeString(r, "eth0")+" scope "+r.Scope.String())
	}
	slices.Sort(got)
	want := []string{"169.254.1.1/32 dev eth0 table 254 scope link", "default via 169.254.1.1 dev eth0 onlink table 254 scope universe"}
	if !slices.Equal(got, want) {
		t.Errorf("pod routes %q, want %q", got, want)
	}
	neighs, _ := n.pod.NeighList(pl.Attrs().Index, netlink.FAMILY_V4)
	if len(neighs) != 1 || !neighs[0].IP.Equal(net.ParseIP(GatewayV4)) || neighs[0].State != netlink.NUD_PERMANENT ||
		!bytes.Equal(neighs[0].HardwareAddr, hl.Attrs().HardwareAddr) {
		t.Errorf("pod neighbours %v, want 169.254.1.1 lladdr %s permanent", neighs, hl.Attrs().HardwareAddr)
	}
	for _, k := range []string{"accept_ra", "autoconf"} {
		if v := readSysctlIn(t, n.podNs, sysctlPath("ipv6", "conf", "eth0", k)); v != "0" {
			t.Errorf("pod eth0 %s = %s, want 0", k, v)
		}
	}

	// Host side.
	hroutes, _ := n.host.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: host32(p.IP), Table: unix.RT_TABLE_MAIN},
		netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
	if len(hroutes) != 1 || hroutes[0].LinkIndex != hl.Attrs().Index || hroutes[0].Scope != netlink.SCOPE_LINK ||
		hroutes[0].Protocol != RouteProtocol || hroutes[0].Gw != nil {
		t.Errorf("host routes to the pod %v, want 10.9.0.5/32 dev %s scope link proto %d", hroutes, veth, RouteProtocol)
	}
	if got := rulesAt(t, n.host, 512); !slices.Equal(got, []string{"rule 512 to 10.9.0.5/32 lookup 254"}) {
		t.Errorf("rules at 512: %q", got)
	}
	if got := rulesAt(t, n.host, 2048); !slices.Equal(got, []string{"rule 2048 from 10.9.0.5/32 lookup 1005"}) {
		t.Errorf("rules at 2048: %q", got)
	}
	if v := readSysctlIn(t, n.hostNs, sysctlPath("ipv4", "ip_forward")); v != "1" {
		t.Errorf("host ip_forward = %s, want 1", v)
	}
	if err := n.check(p); err != nil {
		t.Errorf("Check after Add: %v", err)
	}
}

// TestTrafficFollowsTables proves the rules steer: a UDP echo from the pod to an address behind a veth that
// stands in for the ENI (its far end in a "fabric" namespace holding the vSwitch gateway and the remote) leaves
// through the ENI's table, and the reply comes back to the pod through the main table.
func TestTrafficFollowsTables(t *testing.T) {
	n := newTestNet(t)
	fabNs, fab := testenv.NewNetns(t)
	eni := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eni1", TxQLen: -1}, PeerName: "gw0",
		PeerNamespace: netlink.NsFd(int(fabNs))}
	if err := n.host.LinkAdd(eni); err != nil {
		t.Fatal(err)
	}
	eniLink := linkByName(t, n.host, "eni1")
	gw := linkByName(t, fab, "gw0")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(fab.AddrAdd(gw, &netlink.Addr{IPNet: ipNet("10.9.0.253/24")}))
	must(fab.LinkSetUp(gw))
	lo := linkByName(t, fab, "lo")
	must(fab.AddrAdd(lo, &netlink.Addr{IPNet: ipNet("192.0.2.10/32")}))
	// The fabric knows where the pod's address lives (as the VPC does): on the ENI's MAC.
	must(fab.NeighAdd(&netlink.Neigh{LinkIndex: gw.Attrs().Index, Family: netlink.FAMILY_V4, State: netlink.NUD_PERMANENT,
		IP: net.ParseIP("10.9.0.5"), HardwareAddr: eniLink.Attrs().HardwareAddr}))

	var table int
	n.inHost(func() {
		h := Host{}
		l, err := h.LinkByMAC(eniLink.Attrs().HardwareAddr)
		if err != nil {
			t.Error(err)
			return
		}
		table = TableFor(1000, l.Attrs().Index)
		if _, err := h.EnsureENI(ENILink{MAC: eniLink.Attrs().HardwareAddr, Gateway: netip.MustParseAddr("10.9.0.253"),
			CIDR: netip.MustParsePrefix("10.9.0.0/24"), Table: table}); err != nil {
			t.Error(err)
		}
	})
	if t.Failed() {
		return
	}
	p := n.testPod()
	p.Table = table
	res, err := n.add(p)
	if err != nil {
		t.Fatal(err)
	}

	// The kernel's own decision for a packet from the pod entering its veth: out of the ENI via the gateway.
	hostIdx := linkByName(t, n.host, res.HostVeth).Attrs().Index
	rg, err := n.host.RouteGetWithOptions(net.ParseIP("192.0.2.10"), &netlink.RouteGetOptions{IifIndex: hostIdx, SrcAddr: net.ParseIP("10.9.0.5")})
	if err != nil || len(rg) != 1 || rg[0].LinkIndex != eniLink.Attrs().Index || !rg[0].Gw.Equal(net.ParseIP("10.9.0.253")) || rg[0].Table != table {
		t.Errorf("route get 192.0.2.10 from 10.9.0.5 iif %s: %v (err %v), want via 10.9.0.253 dev eni1 table %d", res.HostVeth, rg, err, table)
	}
	// And for the reply entering the ENI: the main table's /32 to the pod's veth.
	rg, err = n.host.RouteGetWithOptions(net.ParseIP("10.9.0.5"), &netlink.RouteGetOptions{IifIndex: eniLink.Attrs().Index, SrcAddr: net.ParseIP("192.0.2.10")})
	if err != nil || len(rg) != 1 || rg[0].LinkIndex != hostIdx || rg[0].Table != unix.RT_TABLE_MAIN {
		t.Errorf("route get 10.9.0.5 from 192.0.2.10 iif eni1: %v (err %v), want dev %s table main", rg, err, res.HostVeth)
	}

	before := linkByName(t, n.host, "eni1").Attrs().Statistics
	var srv net.PacketConn
	must(nsutil.Do(fabNs, func() error {
		var err error
		srv, err = net.ListenPacket("udp4", "192.0.2.10:0")
		return err
	}))
	defer srv.Close()
	from := make(chan net.Addr, 1)
	go func() {
		buf := make([]byte, 64)
		k, addr, err := srv.ReadFrom(buf)
		if err != nil {
			close(from)
			return
		}
		from <- addr
		_, _ = srv.WriteTo(buf[:k], addr)
	}()
	var c net.Conn
	must(nsutil.Do(n.podNs, func() error {
		var err error
		c, err = net.Dial("udp4", srv.LocalAddr().String())
		return err
	}))
	defer c.Close()
	must(c.SetDeadline(time.Now().Add(20 * time.Second)))
	if _, err := c.Write([]byte("weft")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	k, err := c.Read(buf)
	if err != nil || string(buf[:k]) != "weft" {
		for _, ns := range []struct {
			n string
			h *netlink.Handle
		}{{"host", n.host}, {"fab", fab}, {"pod", n.pod}} {
			t.Logf("%s:\n%s", ns.n, dump(t, ns.h))
			ls, _ := ns.h.LinkList()
			for _, l := range ls {
				t.Logf("%s %+v", l.Attrs().Name, *l.Attrs().Statistics)
			}
		}
		t.Fatalf("echo from 192.0.2.10: %q, %v", buf[:k], err)
	}
	if a := <-from; a == nil || a.(*net.UDPAddr).IP.String() != "10.9.0.5" {
		t.Errorf("the remote saw the request from %v, want the pod's own address 10.9.0.5", a)
	}
	after := linkByName(t, n.host, "eni1").Attrs().Statistics
	if after.TxPackets <= before.TxPackets || after.RxPackets <= before.RxPackets {
		t.Errorf("eni1 counters tx %d -> %d, rx %d -> %d: the echo did not cross the ENI", before.TxPackets, after.TxPackets,
			before.RxPackets, after.RxPackets)
	}

	// Without the "from" rule the host has no way to 192.0.2.10: the rule is what sends it to the ENI.
	must(n.host.RuleDel(podRule{Priority: 2048, IP: p.IP, Table: table}.rule()))
	if rg, err := n.host.RouteGetWithOptions(net.ParseIP("192.0.2.10"), &netlink.RouteGetOptions{IifIndex: hostIdx,
		SrcAddr: net.ParseIP("10.9.0.5")}); err == nil {
		t.Errorf("without the from-pod rule, route get 192.0.2.10 from the pod: %v, want unreachable", rg)
	}
}

func TestDelTwice(t *testing.T) {
	n := newTestNet(t)
	hostBefore, podBefore := dump(t, n.host), dump(t, n.pod)
	p := n.testPod()
	if _, err := n.add(p); err != nil {
		t.Fatal(err)
	}
	if err := n.del(p); err != nil {
		t.Fatalf("Del: %v", err)
	}
	sameDump(t, "host netns after Del", hostBefore, dump(t, n.host))
	sameDump(t, "pod netns after Del", podBefore, dump(t, n.pod))
	if err := n.del(p); err != nil {
		t.Fatalf("second Del: %v", err)
	}
	if err := n.check(p); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("Check after Del: %v, want missing pieces", err)
	}
}

func TestDelAfterNetnsGone(t *testing.T) {
	n := newTestNet(t)
	path, remove := namedNetns(t)
	hostBefore := dump(t, n.host)
	p := n.testPod()
	p.Netns = path
	if _, err := n.add(p); err != nil {
		t.Fatal(err)
	}
	remove() // the runtime deleted the sandbox first; the kernel takes the veth pair with the namespace
	if err := n.del(p); err != nil {
		t.Fatalf("Del with the pod netns gone: %v", err)
	}
	mustNotExist(t, n.host, HostVethName(p.ContainerID, p.IfName))
	sameDump(t, "host netns after Del", hostBefore, dump(t, n.host))
	if err := n.del(p); err != nil {
		t.Fatalf("second Del: %v", err)
	}
}

func TestDelWithoutIP(t *testing.T) {
	t.Run("veth there", func(t *testing.T) {
		n := newTestNet(t)
		hostBefore, podBefore := dump(t, n.host), dump(t, n.pod)
		p := n.testPod()
		if _, err := n.add(p); err != nil {
			t.Fatal(err)
		}
		p.IP, p.Table, p.Netns = netip.Addr{}, 0, "" // DEL with no prevResult: the veth's route tells the address
		if err := n.del(p); err != nil {
			t.Fatal(err)
		}
		sameDump(t, "host netns after Del", hostBefore, dump(t, n.host))
		sameDump(t, "pod netns after Del", podBefore, dump(t, n.pod))
	})
	t.Run("veth gone", func(t *testing.T) {
		// Documented limit: with neither the IP nor the veth, nothing ties the rules to the pod; they stay
		// (for weftd's SyncRules) and Del still succeeds.
		n := newTestNet(t)
		p := n.testPod()
		if _, err := n.add(p); err != nil {
			t.Fatal(err)
		}
		if err := n.host.LinkDel(linkByName(t, n.host, HostVethName(p.ContainerID, p.IfName))); err != nil {
			t.Fatal(err)
		}
		noIP := p
		noIP.IP = netip.Addr{}
		if err := n.del(noIP); err != nil {
			t.Fatal(err)
		}
		if got := rulesAt(t, n.host, 2048); len(got) != 1 {
			t.Errorf("rules at 2048 after an IP-less Del of a veth-less pod: %q, want the rule left for SyncRules", got)
		}
		if err := n.del(p); err != nil { // with the IP they go
			t.Fatal(err)
		}
		if got := append(rulesAt(t, n.host, 512), rulesAt(t, n.host, 2048)...); len(got) != 0 {
			t.Errorf("rules after Del with the IP: %q", got)
		}
	})
}

// TestAddRollback fails Add after each of its steps in turn and requires both namespaces exactly as before,
// including a stale rule for the address that Add replaces and a foreign rule it must not touch.
func TestAddRollback(t *testing.T) {
	var steps []string
	stepHook = func(s string) error { steps = append(steps, s); return nil }
	n := newTestNet(t)
	if _, err := n.add(n.testPod()); err != nil {
		stepHook = nil
		t.Fatal(err)
	}
	stepHook = nil
	if len(steps) != 16 {
		t.Fatalf("Add ran steps %q, want all 16", steps)
	}
	for _, step := range steps {
		t.Run(strings.ReplaceAll(step, " ", "_"), func(t *testing.T) {
			n := newTestNet(t)
			p := n.testPod()
			addRule(t, n.host, podRule{Priority: 2048, IP: p.IP, Table: 999})                           // stale
			addRule(t, n.host, podRule{Priority: 1000, IP: netip.MustParseAddr("10.9.9.9"), Table: 77}) // foreign
			hostBefore, podBefore := dump(t, n.host), dump(t, n.pod)
			stepHook = func(s string) error {
				if s == step {
					return errInjected
				}
				return nil
			}
			defer func() { stepHook = nil }()
			_, err := n.add(p)
			if err == nil || !strings.Contains(err.Error(), step) || !strings.Contains(err.Error(), errInjected.Error()) {
				t.Fatalf("Add failing at %q: err %v, want one naming the step", step, err)
			}
			sameDump(t, "host netns after the rollback", hostBefore, dump(t, n.host))
			sameDump(t, "pod netns after the rollback", podBefore, dump(t, n.pod))
		})
	}
}

func TestAddRefusesWhatIsThere(t *testing.T) {
	t.Run("pod interface exists", func(t *testing.T) {
		n := newTestNet(t)
		if err := n.pod.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "eth0", TxQLen: -1}}); err != nil {
			t.Fatal(err)
		}
		hostBefore, podBefore := dump(t, n.host), dump(t, n.pod)
		if _, err := n.add(n.testPod()); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "already has an interface eth0") {
			t.Errorf("Add into a netns with eth0: %v", err)
		}
		sameDump(t, "host netns", hostBefore, dump(t, n.host))
		sameDump(t, "pod netns", podBefore, dump(t, n.pod))
	})
	t.Run("host veth exists", func(t *testing.T) {
		n := newTestNet(t)
		p := n.testPod()
		if err := n.host.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: HostVethName(p.ContainerID, p.IfName), TxQLen: -1}}); err != nil {
			t.Fatal(err)
		}
		hostBefore, podBefore := dump(t, n.host), dump(t, n.pod)
		if _, err := n.add(p); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "already exists") {
			t.Errorf("Add over a leftover host veth: %v", err)
		}
		sameDump(t, "host netns", hostBefore, dump(t, n.host))
		sameDump(t, "pod netns", podBefore, dump(t, n.pod))
		if err := n.del(p); err == nil || !strings.Contains(err.Error(), "not a veth") {
			t.Errorf("Del of a non-veth of that name: %v, want a refusal", err)
		}
	})
	t.Run("stale rule replaced", func(t *testing.T) {
		n := newTestNet(t)
		p := n.testPod()
		addRule(t, n.host, podRule{Priority: 2048, IP: p.IP, Table: 999})
		if _, err := n.add(p); err != nil {
			t.Fatal(err)
		}
		if got := rulesAt(t, n.host, 2048); !slices.Equal(got, []string{"rule 2048 from 10.9.0.5/32 lookup 1005"}) {
			t.Errorf("rules at 2048: %q, want only the pod's", got)
		}
	})
}

func TestCheckNamesMissingPiece(t *testing.T) {
	cases := []struct {
		name  string
		brk   func(t *testing.T, n *testNet, p Pod)
		wants string
	}{
		{"host veth", func(t *testing.T, n *testNet, p Pod) {
			if err := n.host.LinkDel(linkByName(t, n.host, HostVethName(p.ContainerID, p.IfName))); err != nil {
				t.Fatal(err)
			}
		}, "host veth " + HostVethName("0123456789abcdef", "eth0") + ": missing"},
		{"host veth down", func(t *testing.T, n *testNet, p Pod) {
			if err := n.host.LinkSetDown(linkByName(t, n.host, HostVethName(p.ContainerID, p.IfName))); err != nil {
				t.Fatal(err)
			}
		}, ": down"},
		{"host route", func(t *testing.T, n *testNet, p Pod) {
			if err := n.host.RouteDel(&netlink.Route{Dst: host32(p.IP), Table: unix.RT_TABLE_MAIN, Scope: netlink.SCOPE_LINK,
				LinkIndex: linkByName(t, n.host, HostVethName(p.ContainerID, p.IfName)).Attrs().Index}); err != nil {
				t.Fatal(err)
			}
		}, "host route 10.9.0.5/32"},
		{"to-pod rule", func(t *testing.T, n *testNet, p Pod) {
			if err := n.host.RuleDel(podRule{Priority: 512, To: true, IP: p.IP, Table: 254}.rule()); err != nil {
				t.Fatal(err)
			}
		}, "rule 512 to 10.9.0.5/32 lookup 254: missing"},
		{"from-pod rule", func(t *testing.T, n *testNet, p Pod) {
			if err := n.host.RuleDel(podRule{Priority: 2048, IP: p.IP, Table: 1005}.rule()); err != nil {
				t.Fatal(err)
			}
		}, "rule 2048 from 10.9.0.5/32 lookup 1005: missing"},
		{"from-pod rule wrong table", func(t *testing.T, n *testNet, p Pod) {
			if err := n.host.RuleDel(podRule{Priority: 2048, IP: p.IP, Table: 1005}.rule()); err != nil {
				t.Fatal(err)
			}
			addRule(t, n.host, podRule{Priority: 2048, IP: p.IP, Table: 1006})
		}, "wrong instead"},
		{"ip_forward", func(t *testing.T, n *testNet, p Pod) {
			if err := nsutil.Do(n.hostNs, func() error { return ensureSysctl(sysctlPath("ipv4", "ip_forward"), "0") }); err != nil {
				t.Fatal(err)
			}
		}, "net.ipv4.ip_forward"},
		{"pod interface down", func(t *testing.T, n *testNet, p Pod) {
			if err := n.pod.LinkSetDown(linkByName(t, n.pod, "eth0")); err != nil {
				t.Fatal(err)
			}
		}, "pod interface eth0: down"},
		{"pod MTU", func(t *testing.T, n *testNet, p Pod) {
			if err := n.pod.LinkSetMTU(linkByName(t, n.pod, "eth0"), 1300); err != nil {
				t.Fatal(err)
			}
		}, "pod interface eth0: MTU 1300, want 1400"},
		{"pod address", func(t *testing.T, n *testNet, p Pod) {
			if err := n.pod.AddrDel(linkByName(t, n.pod, "eth0"), &netlink.Addr{IPNet: host32(p.IP)}); err != nil {
				t.Fatal(err)
			}
		}, "pod address 10.9.0.5/32"},
		{"pod default route", func(t *testing.T, n *testNet, p Pod) {
			if err := n.pod.RouteDel(&netlink.Route{LinkIndex: linkByName(t, n.pod, "eth0").Attrs().Index,
				Gw: net.ParseIP(GatewayV4)}); err != nil {
				t.Fatal(err)
			}
		}, "pod default route"},
		{"pod gateway route", func(t *testing.T, n *testNet, p Pod) {
			// The default route goes too when its gateway loses its route? No: it is onlink, it stays.
			if err := n.pod.RouteDel(&netlink.Route{Dst: host32(gatewayV4), LinkIndex: linkByName(t, n.pod, "eth0").Attrs().Index,
				Scope: netlink.SCOPE_LINK}); err != nil {
				t.Fatal(err)
			}
		}, "pod route 169.254.1.1/32"},
		{"pod neighbour", func(t *testing.T, n *testNet, p Pod) {
			if err := n.pod.NeighDel(&netlink.Neigh{LinkIndex: linkByName(t, n.pod, "eth0").Attrs().Index,
				Family: netlink.FAMILY_V4, IP: net.ParseIP(GatewayV4)}); err != nil {
				t.Fatal(err)
			}
		}, "pod neighbour 169.254.1.1"},
		{"pod netns", func(t *testing.T, n *testNet, p Pod) {}, "pod netns /nonexistent"},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			n := newTestNet(t)
			p := n.testPod()
			if _, err := n.add(p); err != nil {
				t.Fatal(err)
			}
			if err := n.check(p); err != nil {
				t.Fatalf("Check before breaking: %v", err)
			}
			c.brk(t, n, p)
			if c.name == "pod netns" {
				p.Netns = "/nonexistent"
			}
			err := n.check(p)
			if err == nil || !strings.Contains(err.Error(), c.wants) {
				t.Fatalf("Check with the %s broken: %v, want it to say %q", c.name, err, c.wants)
			}
		})
	}
}
