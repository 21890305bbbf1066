package datapath

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/weftnet/weft/internal/nsutil"
	"github.com/weftnet/weft/internal/testenv"
)

// exclusiveNet is testNet plus a "VPC" namespace: the host's ENI "eth2" is a veth whose other end sits there
// with the vSwitch gateway 10.9.0.253/24 (as alisim's fabric makes ENIs), and the host's own address 10.8.0.1
// on its loopback.
type exclusiveNet struct {
	*testNet
	vpcNs netns.NsHandle
	vpc   *netlink.Handle
	mac   net.HardwareAddr
}

func newExclusiveNet(t *testing.T) *exclusiveNet {
	t.Helper()
	n := &exclusiveNet{testNet: newTestNet(t)}
	n.vpcNs, n.vpc = testenv.NewNetns(t)
	n.mac, _ = net.ParseMAC("00:16:3e:00:aa:02")
	la := netlink.NewLinkAttrs()
	la.Name, la.HardwareAddr = "eth2", n.mac
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(n.host.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "sw", PeerNamespace: netlink.NsFd(int(n.vpcNs))}))
	sw := linkByName(t, n.vpc, "sw")
	must(n.vpc.AddrAdd(sw, &netlink.Addr{IPNet: ipNet("10.9.0.253/24")}))
	must(n.vpc.LinkSetUp(sw))
	lo := linkByName(t, n.host, "lo")
	must(n.host.LinkSetUp(lo))
	must(n.host.AddrAdd(lo, &netlink.Addr{IPNet: ipNet("10.8.0.1/32")}))
	must(n.host.LinkSetUp(linkByName(t, n.host, "eth2")))
	must(n.host.AddrAdd(linkByName(t, n.host, "eth2"), &netlink.Addr{IPNet: ipNet("10.9.0.77/24")})) // flushed on the way in
	return n
}

func (n *exclusiveNet) xpod() ExclusivePod {
	return ExclusivePod{ContainerID: "0123456789abcdef", Netns: n.podPath, IfName: "eth0", MAC: n.mac,
		IP: netip.MustParseAddr("10.9.0.5"), Gateway: netip.MustParseAddr("10.9.0.253"), MTU: 1400,
		HostRoutes: []netip.Prefix{netip.MustParsePrefix("10.8.0.1/32"), netip.MustParsePrefix("10.96.0.0/12")}}
}

func (n *exclusiveNet) add(p ExclusivePod) (ExclusiveResult, error) {
	var res ExclusiveResult
	var err error
	n.inHost(func() { res, err = AddExclusive(p) })
	return res, err
}

func (n *exclusiveNet) delx(p ExclusivePod) error {
	var err error
	n.inHost(func() { err = DelExclusive(p) })
	return err
}

func (n *exclusiveNet) checkx(p ExclusivePod) error {
	var err error
	n.inHost(func() { err = CheckExclusive(p) })
	return err
}

// echo sends a datagram from the client namespace to addr (a UDP echo server in the server namespace) and
// returns the source address the server saw.
func echo(t *testing.T, server netns.NsHandle, addr string, client netns.NsHandle) (string, error) {
	t.Helper()
	return echoOn(t, "udp4", server, addr, client)
}

// echoOn is echo over network ("udp4" or "udp6").
func echoOn(t *testing.T, network string, server netns.NsHandle, addr string, client netns.NsHandle) (string, error) {
	t.Helper()
	var srv net.PacketConn
	if err := nsutil.Do(server, func() (err error) { srv, err = net.ListenPacket(network, addr); return err }); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	from := make(chan string, 1)
	go func() {
		buf := make([]byte, 64)
		k, a, err := srv.ReadFrom(buf)
		if err != nil {
			from <- ""
			return
		}
		from <- a.(*net.UDPAddr).IP.String()
		_, _ = srv.WriteTo(buf[:k], a)
	}()
	var c net.Conn
	if err := nsutil.Do(client, func() (err error) { c, err = net.Dial(network, srv.LocalAddr().String()); return err }); err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("weft")); err != nil {
		return "", err
	}
	buf := make([]byte, 64)
	if k, err := c.Read(buf); err != nil || string(buf[:k]) != "weft" {
		return "", errors.Join(err, errors.New("no echo"))
	}
	return <-from, nil
}

func TestExclusiveMovesTheENIIntoThePodAndBack(t *testing.T) {
	n := newExclusiveNet(t)
	p := n.xpod()
	res, err := n.add(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.host.LinkByName("eth2"); err == nil {
		t.Fatal("eth2 still on the host after ADD")
	}
	eni := linkByName(t, n.pod, "eth0")
	if !bytes.Equal(eni.Attrs().HardwareAddr, n.mac) || eni.Attrs().MTU != 1400 || eni.Attrs().Alias != ExclusiveAlias+"eth2" {
		t.Fatalf("pod eth0: MAC %s MTU %d alias %q, want the ENI's %s, 1400, %q", eni.Attrs().HardwareAddr, eni.Attrs().MTU,
			eni.Attrs().Alias, n.mac, ExclusiveAlias+"eth2")
	}
	addrs, _ := n.pod.AddrList(eni, netlink.FAMILY_V4)
	if len(addrs) != 1 || addrs[0].IPNet.String() != "10.9.0.5/32" {
		t.Fatalf("pod eth0 addresses %v, want exactly 10.9.0.5/32 (the host's 10.9.0.77 flushed)", addrs)
	}
	d := dump(t, n.pod)
	for _, want := range []string{"default via 10.9.0.253 dev eth0", "10.8.0.1/32 via 169.254.1.1 dev veth1", "10.96.0.0/12 via 169.254.1.1 dev veth1"} {
		if !strings.Contains(d, want) {
			t.Errorf("pod lacks %q:\n%s", want, d)
		}
	}
	if res.HostVeth != HostVethName(p.ContainerID, p.IfName) || !bytes.Equal(res.PodMAC, n.mac) {
		t.Errorf("result %+v", res)
	}
	if err := n.checkx(p); err != nil {
		t.Fatalf("CHECK after ADD: %v", err)
	}
	// The VPC reaches the pod through the ENI; the pod reaches the node through the veth, with its own address.
	if src, err := echo(t, n.podNs, "10.9.0.5:7001", n.vpcNs); err != nil || src != "10.9.0.253" {
		t.Fatalf("VPC -> pod over the ENI: seen from %q, %v", src, err)
	}
	if src, err := echo(t, n.hostNs, "10.8.0.1:7002", n.podNs); err != nil || src != "10.9.0.5" {
		t.Fatalf("pod -> node over veth1: the node saw %q (want 10.9.0.5), %v", src, err)
	}
	if _, err := n.add(p); !errors.Is(err, ErrExists) {
		t.Fatalf("a second ADD: %v, want ErrExists", err)
	}
	// CHECK names what is missing.
	if err := n.pod.RouteDel(&netlink.Route{LinkIndex: eni.Attrs().Index, Gw: net.ParseIP("10.9.0.253")}); err != nil {
		t.Fatal(err)
	}
	if err := n.checkx(p); err == nil || !strings.Contains(err.Error(), "default route via 10.9.0.253") {
		t.Fatalf("CHECK without the default route: %v", err)
	}
	for i := range 2 { // idempotent
		if err := n.delx(p); err != nil {
			t.Fatalf("DEL %d: %v", i, err)
		}
	}
	back := linkByName(t, n.host, "eth2")
	if !bytes.Equal(back.Attrs().HardwareAddr, n.mac) || back.Attrs().Flags&net.FlagUp != 0 || back.Attrs().Alias != "" {
		t.Fatalf("eth2 back on the host: MAC %s flags %v alias %q, want the ENI, down, no alias", back.Attrs().HardwareAddr, back.Attrs().Flags, back.Attrs().Alias)
	}
	if a, _ := n.host.AddrList(back, netlink.FAMILY_V4); len(a) != 0 {
		t.Fatalf("eth2 back with addresses %v", a)
	}
	mustNotExist(t, n.host, res.HostVeth)
	if ls, _ := n.pod.LinkList(); len(ls) != 1 {
		t.Fatalf("pod after DEL has %d links, want lo only", len(ls))
	}
	// And a new pod takes it again.
	if _, err := n.add(p); err != nil {
		t.Fatalf("ADD after DEL: %v", err)
	}
}

// A failing step undoes everything: the ENI is back on the host under its name, nothing left in the pod or on
// the host.
func TestExclusiveAddRollsBack(t *testing.T) {
	for _, step := range []string{"ENI address", stepVeth, "pod routes to the host", stepHostRoute} {
		t.Run(step, func(t *testing.T) {
			n := newExclusiveNet(t)
			hostBefore := linkByName(t, n.host, "eth2")
			stepHook = func(s string) error {
				if s == step {
					return errors.New("injected")
				}
				return nil
			}
			defer func() { stepHook = nil }()
			if _, err := n.add(n.xpod()); err == nil || !strings.Contains(err.Error(), step) {
				t.Fatalf("ADD failing at %q: %v", step, err)
			}
			l := linkByName(t, n.host, "eth2")
			if l.Attrs().Index != hostBefore.Attrs().Index || l.Attrs().Alias != "" {
				t.Fatalf("eth2 after the rollback: ifindex %d (was %d) alias %q", l.Attrs().Index, hostBefore.Attrs().Index, l.Attrs().Alias)
			}
			mustNotExist(t, n.host, HostVethName(n.xpod().ContainerID, "eth0"))
			if ls, _ := n.pod.LinkList(); len(ls) != 1 {
				t.Fatalf("pod after the rollback has %d links, want lo only", len(ls))
			}
		})
	}
}

// DEL of a pod whose namespace is gone: the host veth goes, nothing fails.
func TestExclusiveDelWithoutNamespace(t *testing.T) {
	n := newExclusiveNet(t)
	path, remove := namedNetns(t)
	p := n.xpod()
	p.Netns = path
	if _, err := n.add(p); err != nil {
		t.Fatal(err)
	}
	remove()
	if err := n.delx(p); err != nil {
		t.Fatal(err)
	}
	mustNotExist(t, n.host, HostVethName(p.ContainerID, p.IfName))
}

func TestExclusivePodRefusesBadFields(t *testing.T) {
	p := ExclusivePod{ContainerID: "c", Netns: "/x", IfName: "veth1", IP: netip.MustParseAddr("10.0.0.1"),
		HostRoutes: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}}
	err := p.validate()
	for _, want := range []string{"IfName \"veth1\"", "MAC", "Gateway", "HostRoutes[0]"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validate: %v, want it to name %s", err, want)
		}
	}
}
