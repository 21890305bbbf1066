package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/cloud/aliyun/sim"
	"github.com/weftnet/weft/internal/eni/checkpoint"
	"github.com/weftnet/weft/internal/lab"
)

// TestENIDualStack: two nodes with ip_stack "dual": every pod gets an IPv4 and an IPv6 address of the same ENI,
// pods reach each other across nodes over both families, an instance outside the cluster in the pod's own IPv6
// block reaches a pod's IPv6 address, CHECK names a removed IPv6 address, weftd repairs a flushed ENI table's IPv6
// routes and removes a stray IPv6 rule, a weftd restart keeps the pairs (reconcile, log), and DEL releases both
// (the checkpoint's record cools down with the pair, the host's IPv6 rules go).
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
		// The outside instance sits in the pod's own vSwitch block and solicits the pod's IPv6 address on its
		// segment: the fabric's bridge answers for ENI IPv6 addresses (proxy NDP), as the VPC delivers them.
		if err := lab.WaitFor(15*time.Second, "outside -> pod v6", func() (bool, error) {
			_, err := lab.NSRun(e.outside, "ping", "-6", "-c", "1", "-W", "1", a.IPv6)
			return err == nil, nil
		}); err != nil {
			for _, c := range [][]string{{e.outside, "ip", "-6", "addr"}, {e.outside, "ip", "-6", "route"}, {e.fab.Router, "ip", "-6", "route"},
				{e.fab.Router, "ip", "-6", "neigh", "show", "proxy"}, {e.outside, "ping", "-6", "-c", "1", "-W", "1", "fd00:192:168::1"},
				{e.outside, "ping", "-6", "-c", "1", "-W", "1", b.IPv6}} {
				out, err := lab.NSRun(c[0], c[1:]...)
				t.Logf("%v: %v\n%s", c, err, out)
			}
			t.Fatal(err)
		}
		// i-alisim0003, 192.168.0.12, in the pod's block: fd00:192:168:0::12.
		if got := sourceSeenBy(t, e.outside, "fd00:192:168::12", 10502, a.ns); got != a.IPv6 {
			t.Errorf("the outside instance saw %s, want the pod's IPv6 address %s", got, a.IPv6)
		}
	})
	t.Run("CHECK passes, and fails on a removed IPv6 address", func(t *testing.T) {
		if err := e.rts[n1.Name].Check(context.Background(), a.Sandbox); err != nil {
			t.Fatalf("CHECK of an intact dual-stack pod: %v", err)
		}
		if out, err := lab.NSRun(a.ns, "ip", "-6", "addr", "del", a.IPv6+"/128", "dev", "eth0"); err != nil {
			t.Fatalf("remove the pod's IPv6 address: %v %s", err, out)
		}
		err := e.rts[n1.Name].Check(context.Background(), a.Sandbox)
		if err == nil || !strings.Contains(err.Error(), "pod IPv6 address "+a.IPv6+"/128") {
			t.Errorf("CHECK with the pod's IPv6 address removed: %v, want an error naming it", err)
		}
		if out, err := lab.NSRun(a.ns, "ip", "-6", "addr", "add", a.IPv6+"/128", "dev", "eth0", "nodad"); err != nil {
			t.Fatalf("put the pod's IPv6 address back: %v %s", err, out)
		}
		if err := e.rts[n1.Name].Check(context.Background(), a.Sandbox); err != nil {
			t.Errorf("CHECK after the address is back: %v", err)
		}
	})
	t.Run("a flushed ENI IPv6 route and a stray IPv6 rule are repaired", func(t *testing.T) {
		table := ""
		out, _ := lab.NSRun(n1.Name, "ip", "-6", "rule", "show", "from", a.IPv6)
		if f := strings.Fields(out); slices.Index(f, "lookup") >= 0 && slices.Index(f, "lookup")+1 < len(f) {
			table = f[slices.Index(f, "lookup")+1]
		}
		if table == "" || table == "main" {
			t.Fatalf("no IPv6 rule from %s to an ENI table:\n%s", a.IPv6, out)
		}
		if out, err := lab.NSRun(n1.Name, "ip", "-6", "route", "flush", "table", table); err != nil {
			t.Fatalf("flush table %s: %v %s", table, err, out)
		}
		const stray = "fd00:192:168::7e"
		if out, err := lab.NSRun(n1.Name, "ip", "-6", "rule", "add", "from", stray, "lookup", table, "priority", "2048"); err != nil {
			t.Fatalf("add a stray IPv6 rule: %v %s", err, out)
		}
		if err := lab.WaitFor(20*time.Second, "IPv6 table and rules repaired", func() (bool, error) {
			routes, _ := lab.NSRun(n1.Name, "ip", "-6", "route", "show", "table", table)
			rules, _ := lab.NSRun(n1.Name, "ip", "-6", "rule")
			return strings.Contains(routes, "default via") && !strings.Contains(rules, stray), nil
		}); err != nil {
			routes, _ := lab.NSRun(n1.Name, "ip", "-6", "route", "show", "table", table)
			rules, _ := lab.NSRun(n1.Name, "ip", "-6", "rule")
			t.Fatalf("%v: table %s:\n%s\nrules:\n%s", err, table, routes, rules)
		}
		if err := lab.WaitFor(15*time.Second, "v6 after the repair", func() (bool, error) { return a.ping(b.IPv6) == nil, nil }); err != nil {
			t.Errorf("pod %s -> %s after the repair: %v", a.Name, b.IPv6, err)
		}
	})
	t.Run("a weftd restart keeps the IPv6 pairs", func(t *testing.T) {
		if err := n1.Daemon.Stop(); err != nil {
			t.Logf("weftd's exit on SIGTERM: %v", err)
		}
		e.startENI(n1, 10500)
		e.waitReady(n1, 60*time.Second)
		if logs := n1.Daemon.Logs(); !strings.Contains(logs, "1 addresses in use (1 with IPv6)") {
			t.Errorf("the start-up log does not give the pod's IPv6 pair:\n%s", tailN(logs, 30))
		}
		if logs := n1.Daemon.Logs(); strings.Contains(logs, "start-up reconcile") {
			t.Errorf("the restart's reconcile found disagreements:\n%s", tailN(logs, 30))
		}
		f := e.checkpointOf(n1)
		kept := false
		for _, r := range f.Records {
			kept = kept || r.State == checkpoint.Assigned && r.IP.String() == a.IP && r.IPv6.String() == a.IPv6
		}
		if !kept {
			t.Errorf("after the restart the checkpoint lacks the Assigned pair %s/%s: %+v", a.IP, a.IPv6, f.Records)
		}
		if err := lab.WaitFor(15*time.Second, "v6 after the restart", func() (bool, error) { return a.ping(b.IPv6) == nil, nil }); err != nil {
			t.Errorf("pod %s -> %s after the restart: %v", a.Name, b.IPv6, err)
		}
		if err := e.rts[n1.Name].Check(context.Background(), a.Sandbox); err != nil {
			t.Errorf("CHECK after the restart: %v", err)
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
