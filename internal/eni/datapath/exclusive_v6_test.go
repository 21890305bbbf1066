package datapath

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const (
	xGw6   = "2408:4005:300:a100::1"
	xPod6  = "2408:4005:300:a100::5"
	xNode6 = "2408:4005:300:a1ff::10"
)

// newExclusiveNet6 is newExclusiveNet with IPv6: the VPC end of the ENI carries the vSwitch's IPv6 gateway
// (::1 of its /64), the host its own IPv6 address on its loopback and one on the ENI (flushed on the way in).
func newExclusiveNet6(t *testing.T) *exclusiveNet {
	t.Helper()
	n := newExclusiveNet(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(n.vpc.AddrAdd(linkByName(t, n.vpc, "sw"), &netlink.Addr{IPNet: ipNet(xGw6 + "/64"), Flags: unix.IFA_F_NODAD}))
	must(n.host.AddrAdd(linkByName(t, n.host, "lo"), &netlink.Addr{IPNet: ipNet(xNode6 + "/128"), Flags: unix.IFA_F_NODAD}))
	must(n.host.AddrAdd(linkByName(t, n.host, "eth2"), &netlink.Addr{IPNet: ipNet("2408:4005:300:a100::77/64"), Flags: unix.IFA_F_NODAD}))
	return n
}

func (n *exclusiveNet) xpod6() ExclusivePod {
	p := n.xpod()
	p.IPv6, p.IPv6Bits, p.IPv6Gateway = netip.MustParseAddr(xPod6), 64, netip.MustParseAddr(xGw6)
	p.HostRoutes6 = []netip.Prefix{netip.MustParsePrefix(xNode6 + "/128")}
	return p
}

// echo6 is echo over UDP/IPv6: addr "[ip]:port" served in server, sent from client; the source the server saw.
func echo6(t *testing.T, server netns.NsHandle, addr string, client netns.NsHandle) (string, error) {
	t.Helper()
	return echoOn(t, "udp6", server, addr, client)
}

// A dual-stack exclusive pod: eth0 carries the ENI's IPv6 address with the block's /64 and the IPv6 default route
// via the vSwitch's IPv6 gateway, veth1 the node's IPv6 address; the VPC and the node reach the pod over IPv6;
// CHECK names a removed default route and address; DEL brings the ENI back without any global IPv6 address.
func TestExclusiveDualStack(t *testing.T) {
	n := newExclusiveNet6(t)
	p := n.xpod6()
	if _, err := n.add(p); err != nil {
		t.Fatal(err)
	}
	eni := linkByName(t, n.pod, "eth0")
	d := dump(t, n.pod)
	for _, want := range []string{"addr " + xPod6 + "/64 dev eth0", "route default via " + xGw6 + " dev eth0",
		"route " + xNode6 + "/128 via fe80::1 dev veth1", "addr 10.9.0.5/32 dev eth0"} {
		if !strings.Contains(d, want) {
			t.Errorf("pod lacks %q:\n%s", want, d)
		}
	}
	if strings.Contains(d, "2408:4005:300:a100::77") {
		t.Errorf("the host's IPv6 address of the ENI came along:\n%s", d)
	}
	if err := n.checkx(p); err != nil {
		t.Fatalf("CHECK after ADD: %v", err)
	}
	if src, err := echo6(t, n.podNs, "["+xPod6+"]:7011", n.vpcNs); err != nil || src != xGw6 {
		t.Fatalf("VPC -> pod over the ENI, IPv6: seen from %q, %v", src, err)
	}
	if src, err := echo6(t, n.hostNs, "["+xNode6+"]:7012", n.podNs); err != nil || src != xPod6 {
		t.Fatalf("pod -> node over veth1, IPv6: the node saw %q (want %s), %v", src, xPod6, err)
	}
	if err := n.pod.RouteDel(&netlink.Route{LinkIndex: eni.Attrs().Index, Dst: default6, Gw: net.ParseIP(xGw6), Family: netlink.FAMILY_V6}); err != nil {
		t.Fatal(err)
	}
	if err := n.checkx(p); err == nil || !strings.Contains(err.Error(), "no IPv6 default route via "+xGw6) {
		t.Fatalf("CHECK without the IPv6 default route: %v", err)
	}
	if err := n.pod.AddrDel(eni, &netlink.Addr{IPNet: ipNet(xPod6 + "/64")}); err != nil {
		t.Fatal(err)
	}
	if err := n.checkx(p); err == nil || !strings.Contains(err.Error(), "lacks "+xPod6+"/64") {
		t.Fatalf("CHECK without the IPv6 address: %v", err)
	}
	if err := n.delx(p); err != nil {
		t.Fatal(err)
	}
	if _, err := n.add(p); err != nil { // again, then back with the address on it
		t.Fatalf("ADD after DEL: %v", err)
	}
	if err := n.delx(p); err != nil {
		t.Fatal(err)
	}
	back := linkByName(t, n.host, "eth2")
	addrs, _ := n.host.AddrList(back, netlink.FAMILY_V6)
	for _, a := range addrs {
		if !a.IP.IsLinkLocalUnicast() {
			t.Fatalf("eth2 back on the host with IPv6 address %s", a.IPNet)
		}
	}
}

// Without HostRoutes6 (a node without IPv6) the pod still gets its IPv6 address and default route on eth0, and
// veth1 no IPv6 route.
func TestExclusiveDualStackWithoutNodeIPv6(t *testing.T) {
	n := newExclusiveNet6(t)
	p := n.xpod6()
	p.HostRoutes6 = nil
	if _, err := n.add(p); err != nil {
		t.Fatal(err)
	}
	if err := n.checkx(p); err != nil {
		t.Fatal(err)
	}
	d := dump(t, n.pod)
	if !strings.Contains(d, "route default via "+xGw6+" dev eth0") || strings.Contains(d, "via fe80::1 dev veth1") {
		t.Fatalf("pod:\n%s", d)
	}
	if src, err := echo6(t, n.podNs, "["+xPod6+"]:7013", n.vpcNs); err != nil || src != xGw6 {
		t.Fatalf("VPC -> pod over the ENI, IPv6: seen from %q, %v", src, err)
	}
}

func TestExclusivePodRefusesBadIPv6Fields(t *testing.T) {
	p := ExclusivePod{IPv6: netip.MustParseAddr("fe80::5"), IPv6Bits: 129, IPv6Gateway: netip.MustParseAddr("fe80::5"),
		HostRoutes6: []netip.Prefix{netip.MustParsePrefix("::/0")}}
	errs := errors.Join(p.validateV6()...)
	for _, want := range []string{"IPv6 fe80::5", "IPv6Bits 129", "IPv6Gateway fe80::5", "HostRoutes6[0]"} {
		if errs == nil || !strings.Contains(errs.Error(), want) {
			t.Errorf("validate: %v, want it to name %s", errs, want)
		}
	}
	if errs := (ExclusivePod{IPv6Bits: 64}).validateV6(); len(errs) != 1 {
		t.Errorf("IPv6 fields without IPv6: %v", errs)
	}
}
