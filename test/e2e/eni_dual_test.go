package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/cloud/aliyun/sim"
	"github.com/weftnet/weft/internal/eni/checkpoint"
	"github.com/weftnet/weft/internal/lab"
)

// TestENIDualStack: two nodes with ip_stack "dual": every pod gets an IPv4 and an IPv6 address of the same ENI,
// pods reach each other across nodes over both families, an instance outside the cluster reaches a pod's IPv6
// address, and DEL releases both (the checkpoint's record cools down with the pair, the host's IPv6 rules go).
func TestENIDualStack(t *testing.T) {
	t.Parallel()
	e := newENIEnv(t, 2, func(st *sim.State) {
		for i, sw := range st.VSwitches {
			sw.IPv6CIDR = fmt.Sprintf("fd00:192:168:%d::/64", i)
		}
		for _, in := range st.Instances {
			a := netip.MustParseAddr(in.PrimaryIP).As4()
			in.PrimaryIPv6 = fmt.Sprintf("fd00:192:168:%d::%d", a[2], a[3])
		}
	})
	base := e.conf
	e.conf = func(n *lab.Node) string {
		return strings.Replace(base(n), `"cluster_id":"e2e-eni"`, `"cluster_id":"e2e-eni","ip_stack":"dual"`, 1)
	}
	n1, n2 := e.nodes[0], e.nodes[1]
	e.startENI(n1, 10500)
	e.startENI(n2, 10501)
	e.waitReady(n1, 90*time.Second)
	e.waitReady(n2, 90*time.Second)

	type dualPod struct {
		*eniPod
		IPv6 string
	}
	add := func(n *lab.Node, name string) dualPod {
		t.Helper()
		p, err := e.addPod(n, name)
		if err != nil {
			t.Fatalf("pod %s on %s: %v\n%s", name, n.Name, err, tailN(n.Daemon.Logs(), 30))
		}
		out, err := lab.NSRun(p.ns, "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global")
		if err != nil {
			t.Fatalf("pod %s IPv6 addresses: %v %s", name, err, out)
		}
		f := strings.Fields(out)
		for i, w := range f {
			if w == "inet6" && i+1 < len(f) {
				return dualPod{p, strings.TrimSuffix(f[i+1], "/128")}
			}
		}
		t.Fatalf("pod %s has no global IPv6 address: %s", name, out)
		return dualPod{}
	}
	a := add(n1, "d0")
	b := add(n2, "d1")

	t.Run("both addresses of one ENI", func(t *testing.T) {
		for _, c := range []struct {
			p    dualPod
			inst string
		}{{a, "i-alisim0001"}, {b, "i-alisim0002"}} {
			v6 := netip.MustParseAddr(c.p.IPv6)
			found := false
			for _, en := range e.enisOf(c.inst) {
				if en.ID == eniHolding([]aliyun.ENI{en}, c.p.IP) {
					for _, x := range en.IPv6 {
						found = found || x == v6
					}
				}
			}
			if !found {
				t.Errorf("pod %s: %s and %s are not on one ENI of %s: %+v", c.p.Name, c.p.IP, c.p.IPv6, c.inst, e.enisOf(c.inst))
			}
		}
	})
	t.Run("pod to pod across nodes, IPv4 and IPv6", func(t *testing.T) {
		for _, c := range []struct {
			what     string
			from, to dualPod
			ip       string
		}{{"v4 there", a, b, b.IP}, {"v4 back", b, a, a.IP}, {"v6 there", a, b, b.IPv6}, {"v6 back", b, a, a.IPv6}} {
			if err := lab.WaitFor(15*time.Second, c.what, func() (bool, error) { return c.from.ping(c.ip) == nil, nil }); err != nil {
				t.Errorf("%s: %s -> %s (%s): %v", c.what, c.from.Name, c.to.Name, c.ip, err)
			}
		}
	})
	t.Run("an instance outside the cluster reaches the pod's IPv6 address", func(t *testing.T) {
		// Not yet: the outside instance sits in the pod's own vSwitch block and solicits the pod's IPv6 address on
		// its segment; alisim's fabric answers ARP for ENI addresses there (proxy_arp) but not yet neighbour
		// solicitations (proxy_ndp entries on the bridges were tried and did not suffice). Pods of other blocks
		// reach it (the cross-node subtest).
		t.Skip("alisim's fabric does not yet answer IPv6 neighbour solicitations for ENI addresses on the vSwitch segment")
		if err := lab.WaitFor(15*time.Second, "outside -> pod v6", func() (bool, error) {
			_, err := lab.NSRun(e.outside, "ping", "-6", "-c", "1", "-W", "1", a.IPv6)
			return err == nil, nil
		}); err != nil {
			for _, c := range [][]string{{e.outside, "ip", "-6", "addr"}, {e.outside, "ip", "-6", "route"}, {e.fab.Router, "ip", "-6", "route"},
				{e.fab.Router, "ip", "-6", "neigh"}, {e.outside, "ping", "-6", "-c", "1", "-W", "1", "fd00:192:168:1::1"},
				{e.outside, "ping", "-6", "-c", "1", "-W", "1", b.IPv6}} {
				out, err := lab.NSRun(c[0], c[1:]...)
				t.Logf("%v: %v\n%s", c, err, out)
			}
			t.Fatal(err)
		}
		if got := sourceSeenBy(t, e.outside, "fd00:192:168:1::23", 10502, a.ns); got != a.IPv6 {
			t.Errorf("the outside instance saw %s, want the pod's IPv6 address %s", got, a.IPv6)
		}
	})
	t.Run("DEL releases both", func(t *testing.T) {
		if err := e.delPod(a.eniPod); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(n1.Dir, "eni", "checkpoint.json"))
		if err != nil {
			t.Fatal(err)
		}
		var f checkpoint.File
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatal(err)
		}
		cooling := false
		for _, r := range f.Records {
			if r.State == checkpoint.Assigned && r.IP.String() == a.IP {
				t.Errorf("checkpoint still holds %s for a pod: %+v", a.IP, r)
			}
			cooling = cooling || r.State == checkpoint.Cooldown && r.IP.String() == a.IP && r.IPv6.String() == a.IPv6
		}
		if !cooling {
			t.Errorf("checkpoint has no Cooldown record of the pair %s/%s: %s", a.IP, a.IPv6, b)
		}
		out, _ := lab.NSRun(n1.Name, "ip", "-6", "rule")
		if strings.Contains(out, a.IPv6) {
			t.Errorf("IPv6 rules of the deleted pod remain:\n%s", out)
		}
		out, _ = lab.NSRun(n1.Name, "ip", "-6", "route", "show", "table", "main")
		if strings.Contains(out, a.IPv6) {
			t.Errorf("IPv6 route of the deleted pod remains:\n%s", out)
		}
	})
}
