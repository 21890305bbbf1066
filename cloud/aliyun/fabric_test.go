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

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/cloud/aliyun/sim"
	"github.com/weftnet/weft/internal/nsutil"
	"github.com/weftnet/weft/internal/testenv"
)

func nsRun(t *testing.T, ns string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	return string(out), err
}

// listen serves TCP on addr inside the named namespace until the test ends (accepted connections are closed).
func listen(t *testing.T, ns string, addr netip.AddrPort) {
	t.Helper()
	var ln net.Listener
	if err := nsutil.DoNamed(ns, func() (err error) { ln, err = net.Listen("tcp", addr.String()); return err }); err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, ns, err)
	}
	serve(t, ln)
}

func serve(t *testing.T, ln net.Listener) {
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

// reach connects over TCP from inside the named namespace (from src when valid) to dst: a completed handshake
// shows the path works both ways. Three tries of 1 s, so a first ARP exchange cannot fail it.
func reach(ns string, src netip.Addr, dst netip.AddrPort) error {
	var err error
	for range 3 {
		err = nsutil.DoNamed(ns, func() error {
			d := net.Dialer{Timeout: time.Second}
			if src.IsValid() {
				d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
			}
			c, err := d.Dial("tcp", dst.String())
			if err == nil {
				c.Close()
			}
			return err
		})
		if err == nil {
			return nil
		}
	}
	return err
}

// unreachable is reach expected to fail: one try of 1 s.
func unreachable(ns string, src netip.Addr, dst netip.AddrPort) bool {
	return nsutil.DoNamed(ns, func() error {
		d := net.Dialer{Timeout: time.Second}
		if src.IsValid() {
			d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
		}
		c, err := d.Dial("tcp", dst.String())
		if err == nil {
			c.Close()
		}
		return err
	}) != nil
}

// A route entry made through the API carries real traffic between two instances' pod subnets in fabric mode,
// and deleting it stops the traffic; an attached ENI appears in its instance with its MAC and host routes.
func TestFabric(t *testing.T) {
	testenv.RequireRoot(t)
	f := newFixture(t, sim.DefaultTiming, nil)
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	fab, err := sim.NewFabric(f.world, "af"+hex.EncodeToString(b))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fab.Close)
	n1, n2 := fab.NS["i-alisim0001"], fab.NS["i-alisim0002"]
	for ns, addr := range map[string]string{n1: "10.244.1.1/32", n2: "10.244.2.1/32"} {
		if out, err := nsRun(t, ns, "ip", "addr", "add", addr, "dev", "lo"); err != nil {
			t.Fatal(out)
		}
	}
	pod1, pod2 := netip.MustParseAddr("10.244.1.1"), netip.AddrPortFrom(netip.MustParseAddr("10.244.2.1"), 8080)
	listen(t, n2, pod2)
	listen(t, n2, netip.MustParseAddrPort("192.168.1.11:8080"))
	ping := func() error { return reach(n1, pod1, pod2) }
	if err := reach(n1, netip.Addr{}, netip.MustParseAddrPort("192.168.1.11:8080")); err != nil {
		t.Fatalf("instances do not reach each other over the VPC: %v", err)
	}
	if !unreachable(n1, pod1, pod2) {
		t.Fatal("pod subnets reach each other before any route entry exists")
	}
	cl := ecsClient(t, f)
	ctx := context.Background()
	res, err := cl.CreateRouteEntries(ctx, []aliyun.NewRouteEntry{entry("10.244.1.0/24", "i-alisim0001"), entry("10.244.2.0/24", "i-alisim0002")})
	if err != nil || res.Succeeded != 2 {
		t.Fatalf("%+v %v", res, err)
	}
	if err := fab.Sync(); err != nil {
		t.Fatal(err)
	}
	if !unreachable(n1, pod1, pod2) {
		t.Fatal("traffic flows while the entries are still Pending")
	}
	f.clock.Advance(3 * time.Second)
	if err := fab.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := ping(); err != nil {
		t.Fatalf("no traffic through the VPC routes: %v", err)
	}
	es, _ := cl.RouteEntries(ctx, table)
	for _, e := range es {
		if e.Dst == netip.MustParsePrefix("10.244.2.0/24") {
			if err := cl.DeleteRouteEntry(ctx, table, e.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := fab.Sync(); err != nil {
		t.Fatal(err)
	}
	if !unreachable(n1, pod1, pod2) {
		t.Fatal("traffic still flows after the entry was deleted")
	}

	// Metadata answers inside each instance at the well-known address.
	if out, err := nsRun(t, n2, "curl", "-s", "http://100.100.100.200/latest/meta-data/instance-id"); err != nil || out != "i-alisim0002" {
		t.Fatalf("metadata in %s: %q %v", n2, out, err)
	}

	// ENI: attach -> veth with the ENI's MAC in the instance; addresses -> host routes; detach -> gone.
	eni, err := cl.CreateENI(ctx, aliyun.NewENI{VSwitchID: "vsw-alisim0001", SecurityGroupIDs: []string{"sg-alisim0001"}, SecondaryIPs: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.AttachENI(ctx, "i-alisim0001", eni.ID); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Second)
	if err := fab.Sync(); err != nil {
		t.Fatal(err)
	}
	out, _ := nsRun(t, n1, "ip", "link", "show", "eth1")
	if !strings.Contains(out, eni.MAC) {
		t.Fatalf("eth1 in %s: %q, want MAC %s", n1, out, eni.MAC)
	}
	routes, _ := exec.Command("ip", "-n", fab.Router, "route").CombinedOutput()
	if !strings.Contains(string(routes), eni.Secondary[0].String()+" dev ") {
		t.Fatalf("no host route for %s:\n%s", eni.Secondary[0], routes)
	}
	if err := cl.DetachENI(ctx, "i-alisim0001", eni.ID); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Second)
	if err := fab.Sync(); err != nil {
		t.Fatal(err)
	}
	if out, _ := nsRun(t, n1, "ip", "link", "show", "eth1"); !strings.Contains(out, "does not exist") {
		t.Fatalf("eth1 still present after detach: %s", out)
	}
}
