package hostgw

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/backend"
	"github.com/weftnet/weft/backend/backendtest"
	"github.com/weftnet/weft/subnet"
	"github.com/weftnet/weft/subnet/subnettest"
)

func peer(v4, pub, v6, pub6 string) subnet.Lease {
	l := subnet.Lease{EnableIPv4: true, Subnet: netip.MustParsePrefix(v4),
		Attrs: subnet.LeaseAttrs{PublicIP: netip.MustParseAddr(pub), BackendType: "host-gw"}}
	if v6 != "" {
		l.EnableIPv6, l.IPv6Subnet, l.Attrs.PublicIPv6 = true, netip.MustParsePrefix(v6), netip.MustParseAddr(pub6)
	}
	return l
}

func eventually(t *testing.T, what string, got func() []string, want []string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		g := got()
		if fmt.Sprint(g) == fmt.Sprint(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: got %q, want %q", what, g, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRoutesFollowPeers(t *testing.T) {
	n := backendtest.NewNode(t, "10.9.0.2/24", "fd00:9::2/64")
	cfg, err := subnet.ParseConfig([]byte(`{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:5::/56","Backend":{"Type":"host-gw"}}`))
	if err != nil {
		t.Fatal(err)
	}
	f := subnettest.NewFake(cfg)
	sm := f.Manager()
	cfg, _ = sm.GetNetworkConfig(context.Background())
	b, err := backend.New(Name, backend.Deps{SubnetManager: sm, ExtIface: n.Ext, Netlink: n.H, Resync: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	nw, err := b.RegisterNetwork(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if nw.Outputs().Env.MTU != 1500 || nw.Outputs().Lease.Attrs.BackendType != "host-gw" || nw.Outputs().Lease.Attrs.PublicIP.String() != "10.9.0.2" {
		t.Fatalf("MTU %d lease %+v", nw.Outputs().Env.MTU, nw.Outputs().Lease)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { nw.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	p7 := peer("10.5.7.0/24", "10.9.0.7", "fd00:5:0:7::/64", "fd00:9::7")
	p8 := peer("10.5.8.0/24", "10.9.0.8", "", "")
	f.AddLease(p7)
	f.AddLease(p8)
	f.AddLease(peer("10.5.9.0/24", "10.77.0.9", "", "")) // not on-link: refused, no route
	v4 := func() []string { return n.Routes(t, unix.AF_INET, 0) }
	v6 := func() []string { return n.Routes(t, unix.AF_INET6, n.Ext.Iface.Index) }
	eventually(t, "v4 routes", v4, []string{"10.5.7.0/24 via 10.9.0.7 dev eth0", "10.5.8.0/24 via 10.9.0.8 dev eth0"})
	eventually(t, "v6 routes", v6, []string{"fd00:5:0:7::/64 via fd00:9::7 dev eth0"})

	// Foreign routes outside the cluster network are never touched; stale routes inside it are removed.
	if err := n.H.RouteAdd(mustRoute(t, n, "192.168.50.0/24", "10.9.0.50")); err != nil {
		t.Fatal(err)
	}
	if err := n.H.RouteAdd(mustRoute(t, n, "10.5.66.0/24", "10.9.0.66")); err != nil {
		t.Fatal(err)
	}
	f.RemoveLease(p8)
	eventually(t, "after removal", v4, []string{"10.5.7.0/24 via 10.9.0.7 dev eth0", "192.168.50.0/24 via 10.9.0.50 dev eth0"})
}

func mustRoute(t *testing.T, n *backendtest.Node, dst, gw string) *netlink.Route {
	t.Helper()
	return &netlink.Route{Dst: backend.PrefixToIPNet(netip.MustParsePrefix(dst)), Gw: net.ParseIP(gw), LinkIndex: n.Ext.Iface.Index}
}
