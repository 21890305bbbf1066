package vxlan

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/backend"
	"github.com/weftnet/weft/backend/backendtest"
	"github.com/weftnet/weft/subnet"
	"github.com/weftnet/weft/subnet/subnettest"
)

func peer(v4, pub, mac string) subnet.Lease {
	return subnet.Lease{EnableIPv4: true, Subnet: netip.MustParsePrefix(v4),
		Attrs: subnet.LeaseAttrs{PublicIP: netip.MustParseAddr(pub), BackendType: "vxlan",
			BackendData: json.RawMessage(fmt.Sprintf(`{"VNI":1,"VtepMAC":%q}`, mac))}}
}

func fake(t *testing.T, conf string) *subnettest.Fake {
	cfg, err := subnet.ParseConfig([]byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	return subnettest.NewFake(cfg)
}

func start(t *testing.T, n *backendtest.Node, f *subnettest.Fake) backend.Network {
	t.Helper()
	sm := f.Manager()
	cfg, _ := sm.GetNetworkConfig(context.Background())
	b, err := backend.New("vxlan", backend.Deps{SubnetManager: sm, ExtIface: n.Ext, Netlink: n.H, Resync: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	nw, err := b.RegisterNetwork(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { nw.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return nw
}

// eventually polls cond (the reconcile is asynchronous) and reports the last mismatch.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, msg := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never converged: %s", what, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func same(got, want []string) (bool, string) {
	return fmt.Sprint(got) == fmt.Sprint(want), fmt.Sprintf("got %q want %q", got, want)
}

func TestDeviceLeaseAndPeers(t *testing.T) {
	n := backendtest.NewNode(t, "10.9.0.2/24", "")
	f := fake(t, `{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}`)
	// This node held 10.5.3.0/24 with a VtepMAC before: both must be kept.
	f.AddLease(peer("10.5.3.0/24", "10.9.0.2", "0e:00:00:00:00:03"))
	nw := start(t, n, f)

	if nw.Outputs().Lease.Subnet != netip.MustParsePrefix("10.5.3.0/24") || nw.Outputs().Env.MTU != 1450 {
		t.Fatalf("lease %v MTU %d, want 10.5.3.0/24 and 1450", nw.Outputs().Lease.Subnet, nw.Outputs().Env.MTU)
	}
	l, err := n.H.LinkByName("flannel.1")
	if err != nil {
		t.Fatal(err)
	}
	vx := l.(*netlink.Vxlan)
	if vx.VxlanId != 1 || vx.Port != 8472 || vx.Learning || vx.MTU != 1450 || vx.SrcAddr.String() != "10.9.0.2" ||
		vx.VtepDevIndex != n.Ext.Iface.Index || vx.HardwareAddr.String() != "0e:00:00:00:00:03" || vx.OperState == netlink.OperDown {
		t.Fatalf("device: vni %d port %d learning %v mtu %d local %v dev %d mac %s state %v",
			vx.VxlanId, vx.Port, vx.Learning, vx.MTU, vx.SrcAddr, vx.VtepDevIndex, vx.HardwareAddr, vx.OperState)
	}
	addrs, _ := n.H.AddrList(vx, netlink.FAMILY_V4)
	if len(addrs) != 1 || addrs[0].IPNet.String() != "10.5.3.0/32" {
		t.Fatalf("device addresses %v, want 10.5.3.0/32", addrs)
	}
	var data leaseData
	if err := json.Unmarshal(nw.Outputs().Lease.Attrs.BackendData, &data); err != nil || data.VNI != 1 || data.VtepMAC != "0e:00:00:00:00:03" {
		t.Fatalf("BackendData %s", nw.Outputs().Lease.Attrs.BackendData)
	}
	if string(nw.Outputs().Lease.Attrs.BackendData) != `{"VNI":1,"VtepMAC":"0e:00:00:00:00:03"}` {
		t.Fatalf("BackendData not upstream's form: %s", nw.Outputs().Lease.Attrs.BackendData)
	}

	p7, p8 := peer("10.5.7.0/24", "10.9.0.7", "0e:00:00:00:00:07"), peer("10.5.8.0/24", "10.77.0.8", "0e:00:00:00:00:08")
	f.AddLease(p7)
	f.AddLease(p8)
	f.AddLease(subnet.Lease{EnableIPv4: true, Subnet: netip.MustParsePrefix("10.5.9.0/24"),
		Attrs: subnet.LeaseAttrs{PublicIP: netip.MustParseAddr("10.9.0.9"), BackendType: "host-gw"}}) // ignored
	idx := vx.Index
	state := func() (bool, string) {
		if ok, m := same(n.Routes(t, unix.AF_INET, idx), []string{
			"10.5.7.0/24 via 10.5.7.0 dev flannel.1 onlink", "10.5.8.0/24 via 10.5.8.0 dev flannel.1 onlink"}); !ok {
			return false, "routes " + m
		}
		if ok, m := same(n.Neighbours(t, idx, unix.AF_INET), []string{"10.5.7.0 0e:00:00:00:00:07", "10.5.8.0 0e:00:00:00:00:08"}); !ok {
			return false, "neighbours " + m
		}
		return same(n.Neighbours(t, idx, unix.AF_BRIDGE), []string{"10.77.0.8 0e:00:00:00:00:08", "10.9.0.7 0e:00:00:00:00:07"})
	}
	eventually(t, "peers added", state)

	// A hand-deleted route and neighbour are repaired by the periodic resync.
	rs, _ := n.H.RouteListFiltered(unix.AF_INET, &netlink.Route{LinkIndex: idx}, netlink.RT_FILTER_OIF)
	for _, r := range rs {
		if r.Dst != nil && r.Dst.String() == "10.5.7.0/24" {
			if err := n.H.RouteDel(&r); err != nil {
				t.Fatal(err)
			}
		}
	}
	eventually(t, "resync repair", state)

	f.RemoveLease(p8)
	eventually(t, "peer removed", func() (bool, string) {
		if ok, m := same(n.Routes(t, unix.AF_INET, idx), []string{"10.5.7.0/24 via 10.5.7.0 dev flannel.1 onlink"}); !ok {
			return false, m
		}
		if ok, m := same(n.Neighbours(t, idx, unix.AF_INET), []string{"10.5.7.0 0e:00:00:00:00:07"}); !ok {
			return false, m
		}
		return same(n.Neighbours(t, idx, unix.AF_BRIDGE), []string{"10.9.0.7 0e:00:00:00:00:07"})
	})
}

func TestRestartKeepsMACAndRecreatesIncompatibleDevice(t *testing.T) {
	n := backendtest.NewNode(t, "10.9.0.2/24", "")
	// An old device on the wrong port must be replaced; its MAC is kept only through the lease.
	if err := n.H.LinkAdd(&netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: "flannel.1"}, VxlanId: 1, Port: 4789,
		VtepDevIndex: n.Ext.Iface.Index}); err != nil {
		t.Fatal(err)
	}
	f := fake(t, `{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","MTU":1400}}`)
	nw := start(t, n, f)
	l, _ := n.H.LinkByName("flannel.1")
	vx := l.(*netlink.Vxlan)
	if vx.Port != 8472 || vx.MTU != 1350 || nw.Outputs().Env.MTU != 1350 {
		t.Fatalf("port %d MTU %d/%d: want the device recreated on 8472 with Backend.MTU-50", vx.Port, vx.MTU, nw.Outputs().Env.MTU)
	}
	mac := vx.HardwareAddr.String()
	if mac[1] != '2' && mac[1] != '6' && mac[1] != 'a' && mac[1] != 'e' {
		t.Errorf("generated MAC %s is not locally administered", mac)
	}
	// Restart: a new backend on the same node finds the device and the lease, and keeps both.
	nw2 := start(t, n, f)
	l2, _ := n.H.LinkByName("flannel.1")
	if l2.Attrs().Index != vx.Index || l2.Attrs().HardwareAddr.String() != mac || nw2.Outputs().Lease.Subnet != nw.Outputs().Lease.Subnet {
		t.Fatalf("restart changed device/MAC/subnet: %d/%s/%v vs %d/%s/%v", l2.Attrs().Index, l2.Attrs().HardwareAddr,
			nw2.Outputs().Lease.Subnet, vx.Index, mac, nw.Outputs().Lease.Subnet)
	}
}

func TestDirectRouting(t *testing.T) {
	n := backendtest.NewNode(t, "10.9.0.2/24", "")
	f := fake(t, `{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","DirectRouting":true}}`)
	start(t, n, f)
	f.AddLease(peer("10.5.7.0/24", "10.9.0.7", "0e:00:00:00:00:07"))  // same link: direct
	f.AddLease(peer("10.5.8.0/24", "10.77.0.8", "0e:00:00:00:00:08")) // elsewhere: vxlan
	eventually(t, "direct routing", func() (bool, string) {
		return same(n.Routes(t, unix.AF_INET, 0), []string{
			"10.5.7.0/24 via 10.9.0.7 dev eth0", "10.5.8.0/24 via 10.5.8.0 dev flannel.1 onlink"})
	})
}

func TestDualStack(t *testing.T) {
	n := backendtest.NewNode(t, "10.9.0.2/24", "fd00:9::2/64")
	f := fake(t, `{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:5::/56","Backend":{"Type":"vxlan"}}`)
	nw := start(t, n, f)
	l6, err := n.H.LinkByName("flannel-v6.1")
	if err != nil {
		t.Fatal(err)
	}
	if l6.Attrs().MTU != 1430 || nw.Outputs().Env.MTU != 1450 {
		t.Errorf("v6 device MTU %d (want 1430), network MTU %d (want 1450)", l6.Attrs().MTU, nw.Outputs().Env.MTU)
	}
	if nw.Outputs().Lease.Attrs.PublicIPv6 != netip.MustParseAddr("fd00:9::2") || len(nw.Outputs().Lease.Attrs.BackendV6Data) == 0 {
		t.Fatalf("lease attrs %+v", nw.Outputs().Lease.Attrs)
	}
	p := peer("10.5.7.0/24", "10.9.0.7", "0e:00:00:00:00:07")
	p.EnableIPv6, p.IPv6Subnet = true, netip.MustParsePrefix("fd00:5:0:7::/64")
	p.Attrs.PublicIPv6 = netip.MustParseAddr("fd00:9::7")
	p.Attrs.BackendV6Data = json.RawMessage(`{"VNI":1,"VtepMAC":"0e:00:00:00:01:07"}`)
	f.AddLease(p)
	eventually(t, "v6 peer", func() (bool, string) {
		if ok, m := same(n.Routes(t, unix.AF_INET6, l6.Attrs().Index), []string{"fd00:5:0:7::/64 via fd00:5:0:7:: dev flannel-v6.1 onlink"}); !ok {
			return false, m
		}
		if ok, m := same(n.Neighbours(t, l6.Attrs().Index, unix.AF_INET6), []string{"fd00:5:0:7:: 0e:00:00:00:01:07"}); !ok {
			return false, m
		}
		return same(n.Neighbours(t, l6.Attrs().Index, unix.AF_BRIDGE), []string{"fd00:9::7 0e:00:00:00:01:07"})
	})
}

func TestBadConfigNamesField(t *testing.T) {
	for conf, want := range map[string]string{
		`{"VNI":16777216}`: "Backend.VNI", `{"Port":70000}`: "Backend.Port", `{"MTU":-1}`: "Backend.MTU", `{"VNI":"x"}`: "Backend (vxlan)",
	} {
		if _, err := parseConfig(json.RawMessage(conf)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want one naming %s", conf, err, want)
		}
	}
}
