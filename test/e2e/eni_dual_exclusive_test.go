package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftnet/weft/cloud/aliyun/sim"
	"github.com/weftnet/weft/internal/lab"
)

// TestENIDualStackExclusive: a node labelled exclusive with ip_stack "dual": each pod's whole ENI carries one
// IPv6 address, on the pod's eth0 with the vSwitch block's /64 and the IPv6 default route via the block's
// gateway; the two pods reach each other over IPv6 through the fabric, an instance outside the cluster (another
// vSwitch) reaches a pod's IPv6 address and sees it as the source, the pod reaches its node's IPv6 address through
// veth1, CHECK names a removed IPv6 default route, and after DEL the ENI is back on the node without an IPv6
// address.
func TestENIDualStackExclusive(t *testing.T) {
	t.Parallel()
	const port = 10530
	e := newENIEnv(t, 1, func(st *sim.State) { // i-alisim0001 (192.168.0.10); i-alisim0002 outside, 192.168.1.11
		for i, sw := range st.VSwitches {
			sw.IPv6CIDR = fmt.Sprintf("fd00:192:168:%d::/64", i)
		}
		for _, in := range st.Instances {
			a := netip.MustParseAddr(in.PrimaryIP).As4()
			in.PrimaryIPv6 = fmt.Sprintf("fd00:192:168:%d::%d", a[2], a[3])
		}
	})
	e.keepLogs()
	n := e.nodes[0]
	conf := e.conf
	e.conf = func(n *lab.Node) string {
		return strings.Replace(conf(n), `"cluster_id":"e2e-eni"`, `"cluster_id":"e2e-eni","ip_stack":"dual"`, 1)
	}
	ctx := context.Background()
	node, err := e.kube.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node.Labels = map[string]string{"weft.io/eni-mode": "exclusive"}
	if _, err := e.kube.Client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.startENI(n, port)
	e.waitReady(n, 90*time.Second)

	type xpod struct {
		*eniPod
		IPv6 string
	}
	add := func(name string) xpod {
		t.Helper()
		p, err := e.addPod(n, name)
		if err != nil {
			t.Fatalf("pod %s: %v\n%s", name, err, tailN(n.Daemon.Logs(), 30))
		}
		out, _ := lab.NSRun(p.ns, "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global")
		route, _ := lab.NSRun(p.ns, "ip", "-6", "route", "show", "default")
		f := strings.Fields(out)
		for i, w := range f {
			if w == "inet6" && i+1 < len(f) && strings.HasSuffix(f[i+1], "/64") {
				if !strings.Contains(route, "via fd00:192:168:0::1 dev eth0") && !strings.Contains(route, "via fd00:192:168::1 dev eth0") {
					t.Fatalf("pod %s: IPv6 default route %q, want via the block's gateway on eth0", name, route)
				}
				return xpod{p, strings.TrimSuffix(f[i+1], "/64")}
			}
		}
		t.Fatalf("pod %s has no global IPv6 address with the block's /64 on eth0: %q", name, out)
		return xpod{}
	}
	a, b := add("xd0"), add("xd1")
	macOf := func(ip string) string {
		for _, x := range e.enisOf("i-alisim0001") {
			if x.PrimaryIP.String() == ip {
				if len(x.IPv6) != 1 || x.IPv6[0].String() != map[string]string{a.IP: a.IPv6, b.IP: b.IPv6}[ip] {
					t.Errorf("ENI %s of %s lists IPv6 %v, want the pod's one address", x.ID, ip, x.IPv6)
				}
				return strings.ToLower(x.MAC)
			}
		}
		t.Fatalf("no ENI with primary %s", ip)
		return ""
	}
	macA := macOf(a.IP)
	macOf(b.IP)

	t.Run("pod to pod over IPv6", func(t *testing.T) {
		if err := lab.WaitFor(15*time.Second, "v6 a -> b", func() (bool, error) {
			_, err := lab.NSRun(a.ns, "ping", "-6", "-c", "1", "-W", "1", b.IPv6)
			return err == nil, nil
		}); err != nil {
			t.Fatalf("%s -> %s: %v", a.Name, b.IPv6, err)
		}
	})
	t.Run("an instance outside the cluster over IPv6", func(t *testing.T) {
		if got := sourceSeenBy(t, a.ns, a.IPv6, port+1, e.outside); got != "fd00:192:168:1::11" {
			t.Errorf("the pod saw the outside instance as %s, want fd00:192:168:1::11", got)
		}
		if got := sourceSeenBy(t, e.outside, "fd00:192:168:1::11", port+2, b.ns); got != b.IPv6 {
			t.Errorf("the outside instance saw %s, want the pod's IPv6 address %s", got, b.IPv6)
		}
	})
	t.Run("the pod reaches its node's IPv6 address through veth1", func(t *testing.T) {
		route, _ := lab.NSRun(a.ns, "ip", "-6", "route", "get", "fd00:192:168::10")
		if !strings.Contains(route, "dev veth1") {
			t.Skipf("weftd saw no IPv6 address on the node (pod -> node goes %q); veth1 carries IPv4 only", route)
		}
		if got := sourceSeenBy(t, n.Name, "fd00:192:168::10", port+3, a.ns); got != a.IPv6 {
			t.Errorf("the node saw %s, want the pod's IPv6 address %s", got, a.IPv6)
		}
	})
	t.Run("CHECK passes, and names a removed IPv6 default route", func(t *testing.T) {
		if err := e.rts[n.Name].Check(ctx, a.Sandbox); err != nil {
			t.Fatalf("CHECK: %v", err)
		}
		if out, err := lab.NSRun(a.ns, "ip", "-6", "route", "del", "default", "dev", "eth0"); err != nil {
			t.Fatalf("remove the IPv6 default route: %v %s", err, out)
		}
		if err := e.rts[n.Name].Check(ctx, a.Sandbox); err == nil || !strings.Contains(err.Error(), "no IPv6 default route") {
			t.Errorf("CHECK without the IPv6 default route: %v", err)
		}
	})
	t.Run("DEL returns the ENI without its IPv6 address", func(t *testing.T) {
		if err := e.delPod(a.eniPod); err != nil {
			t.Fatal(err)
		}
		var out string
		if err := lab.WaitFor(15*time.Second, "ENI back on the node", func() (bool, error) {
			out, _ = lab.NSRun(n.Name, "ip", "-o", "link")
			return strings.Contains(out, macA), nil
		}); err != nil {
			t.Fatalf("%v:\n%s", err, out)
		}
		name := ""
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, macA) {
				name, _, _ = strings.Cut(strings.TrimSuffix(strings.Fields(l)[1], ":"), "@")
			}
		}
		addrs, err := lab.NSRun(n.Name, "ip", "-6", "-o", "addr", "show", "dev", name, "scope", "global")
		if err != nil || strings.TrimSpace(addrs) != "" {
			t.Errorf("the ENI %s is back with IPv6 addresses: %s %v", name, addrs, err)
		}
	})
}
