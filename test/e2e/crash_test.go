package e2e

// Crash and tampering drills: weftd SIGKILLed under pod traffic, its device, kernel entries and firewall rules
// removed by hand, each followed by an assertion that the node converges back to exactly the state its peers
// require.

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftnet/weft/internal/lab"
	"github.com/weftnet/weft/internal/testenv"
)

const healthPort = 10250

// devices are the vxlan devices of a dual-stack node, by family.
var devices = []struct{ fam, dev, subnetKey string }{
	{"-4", "flannel.1", "FLANNEL_SUBNET"},
	{"-6", "flannel-v6.1", "FLANNEL_IPV6_SUBNET"},
}

// dualVxlan starts n nodes of a dual-stack vxlan cluster, each weftd with /readyz on healthPort, and one pod per
// node.
func dualVxlan(t *testing.T, nodes int) (*env, []*lab.Pod) {
	t.Helper()
	e := newEnv(t, nodes)
	if err := e.lab.PutNetConfig(fmt.Sprintf(netDual, "vxlan")); err != nil {
		t.Fatal(err)
	}
	var pods []*lab.Pod
	for i := range e.lab.Nodes {
		e.startReady(i)
		pods = append(pods, e.pod(i, "p", e.plugin))
	}
	for _, p := range pods {
		if p.IP4 == "" || p.IP6 == "" {
			t.Fatalf("pod %s got %q / %q, want both families", p.Name, p.IP4, p.IP6)
		}
	}
	return e, pods
}

// startReady starts weftd on node i with /readyz on healthPort and waits until that new process answers 200:
// after a crash subnet.env is still there, so it proves nothing about the new process.
func (e *env) startReady(i int) { e.startReadyWith(i, lab.DaemonOptions{}) }

// startReadyWith is startReady with more daemon options (Kubernetes mode).
func (e *env) startReadyWith(i int, o lab.DaemonOptions) {
	e.t.Helper()
	n := e.lab.Nodes[i]
	o.Binary, o.HealthPort = e.weftd, healthPort
	p, err := n.StartDaemon(o)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := lab.WaitFor(60*time.Second, n.Name+" weftd ready", func() (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("weftd exited:\n%s", tailN(p.Logs(), 20))
		}
		code, body, err := n.Readyz(healthPort)
		if err == nil && code != 200 {
			err = fmt.Errorf("/readyz %d %q", code, body)
		}
		return code == 200, err
	}); err != nil {
		e.t.Fatal(err)
	}
}

// mac is the MAC of a device in node n's namespace, or "".
func mac(n *lab.Node, dev string) string {
	out, err := lab.NSRun(n.Name, "cat", "/sys/class/net/"+dev+"/address")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(out)
}

// subnetOf is the masked pod subnet of n in subnet.env's key (FLANNEL_SUBNET, FLANNEL_IPV6_SUBNET).
func subnetOf(t *testing.T, n *lab.Node, key string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(n.EnvValue(key))
	if err != nil {
		t.Fatalf("%s %s: %v", n.Name, key, err)
	}
	return p.Masked()
}

// vxlanState is a node's vxlan entries on one device, normalised: "route <dst> via <gw>", "neigh <ip> <mac>" for
// permanent neighbours, "fdb <mac> dst <ip>" for unicast FDB entries. The kernel's own entries (the address
// route, link-local, multicast, the all-zeros flooding entries) are left out.
func vxlanState(n *lab.Node, fam, dev string) ([]string, error) {
	var out []string
	routes, err := lab.NSRun(n.Name, "ip", "-o", fam, "route", "show", "dev", dev)
	if err != nil {
		return nil, err
	}
	for _, l := range strings.Split(routes, "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && f[1] == "via" {
			out = append(out, "route "+f[0]+" via "+f[2])
		}
	}
	neigh, err := lab.NSRun(n.Name, "ip", fam, "neigh", "show", "dev", dev, "nud", "permanent")
	if err != nil {
		return nil, err
	}
	for _, l := range strings.Split(neigh, "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && f[1] == "lladdr" {
			out = append(out, "neigh "+f[0]+" "+f[2])
		}
	}
	fdb, err := lab.NSRun(n.Name, "bridge", "fdb", "show", "dev", dev)
	if err != nil {
		return nil, err
	}
	for _, l := range strings.Split(fdb, "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && f[1] == "dst" && f[0] != "00:00:00:00:00:00" {
			out = append(out, "fdb "+f[0]+" dst "+f[2])
		}
	}
	sort.Strings(out)
	return out, nil
}

// wantState is what node n must hold on one family's device for its peers: for each, a route to its subnet via
// the subnet's address onlink, a permanent neighbour of that address at the peer's device MAC, and an FDB entry
// sending that MAC to the peer's node address.
func wantState(t *testing.T, peers []*lab.Node, fam, dev, key string) []string {
	t.Helper()
	var out []string
	for _, p := range peers {
		sn, m := subnetOf(t, p, key), mac(p, dev)
		addr := p.Addr
		if fam == "-6" {
			addr = p.Addr6
		}
		out = append(out, "route "+sn.String()+" via "+sn.Addr().String(), "neigh "+sn.Addr().String()+" "+m,
			"fdb "+m+" dst "+addr)
	}
	sort.Strings(out)
	return out
}

// converged waits until every node holds exactly the entries the others require, in both families, and reports
// each mismatch left at the deadline (one deadline for all, so a broken run ends in bounded time).
func converged(t *testing.T, nodes []*lab.Node, timeout time.Duration) bool {
	t.Helper()
	var bad []string
	_ = lab.WaitFor(timeout, "converged", func() (bool, error) {
		bad = nil
		for _, n := range nodes {
			var peers []*lab.Node
			for _, p := range nodes {
				if p != n {
					peers = append(peers, p)
				}
			}
			for _, d := range devices {
				want := wantState(t, peers, d.fam, d.dev, d.subnetKey)
				got, err := vxlanState(n, d.fam, d.dev)
				if err != nil || strings.Join(got, "\n") != strings.Join(want, "\n") {
					bad = append(bad, fmt.Sprintf("%s %s: got\n    %s\n  want\n    %s (%v)", n.Name, d.dev,
						strings.Join(got, "\n    "), strings.Join(want, "\n    "), err))
				}
			}
		}
		return len(bad) == 0, nil
	})
	if len(bad) > 0 {
		t.Errorf("not converged within %s:\n  %s", timeout, strings.Join(bad, "\n  "))
	}
	return len(bad) == 0
}

var pingStats = regexp.MustCompile(`(\d+) packets transmitted, (\d+) (packets )?received`)

// pingLoss pings ip from pod p count times every interval and returns how many went unanswered.
func pingLoss(p *lab.Pod, ip string, count int, interval time.Duration) (int, string) {
	out, _ := lab.NSRun(p.Name, "ping", "-c", strconv.Itoa(count), "-i", fmt.Sprintf("%.1f", interval.Seconds()), "-W", "1", ip)
	m := pingStats.FindStringSubmatch(out)
	if m == nil {
		return count, out
	}
	sent, _ := strconv.Atoi(m[1])
	got, _ := strconv.Atoi(m[2])
	return sent - got, out
}

// reachable waits until pod a reaches b over both families.
func reachable(t *testing.T, a, b *lab.Pod, timeout time.Duration) {
	t.Helper()
	for _, ip := range []string{b.IP4, b.IP6} {
		if err := lab.WaitFor(timeout, fmt.Sprintf("ping %s -> %s", a.Name, ip), func() (bool, error) {
			err := a.Ping(ip, 1)
			return err == nil, err
		}); err != nil {
			t.Error(err)
		}
	}
}

// resyncWait bounds the wait for weftd's periodic backend reconcile (backend.DefaultResync, 30 s, with no flag
// to shorten it) on a loaded machine.
const resyncWait = 75 * time.Second

func TestCrashSIGKILLUnderTraffic(t *testing.T) {
	t.Parallel()
	e, pods := dualVxlan(t, 2)
	if !converged(t, e.lab.Nodes, 20*time.Second) {
		t.FailNow()
	}
	reachable(t, pods[1], pods[0], 20*time.Second)
	n := e.lab.Nodes[0]
	subnets := [2]string{n.EnvValue("FLANNEL_SUBNET"), n.EnvValue("FLANNEL_IPV6_SUBNET")}
	macs := [2]string{mac(n, "flannel.1"), mac(n, "flannel-v6.1")}

	// 100 pings per family at 0.2 s (20 s); weftd on the pinged node is SIGKILLed 3 s in and restarted 3 s later,
	// so the pings span the time it is dead and its whole next start.
	const count = 100
	type result struct {
		ip   string
		lost int
		out  string
	}
	results := make(chan result, 2)
	for _, ip := range []string{pods[0].IP4, pods[0].IP6} {
		go func(ip string) {
			lost, out := pingLoss(pods[1], ip, count, 200*time.Millisecond)
			results <- result{ip, lost, out}
		}(ip)
	}
	time.Sleep(3 * time.Second)
	n.Daemon.Kill()
	if code := n.Daemon.Cmd.ProcessState.ExitCode(); code != -1 {
		t.Errorf("weftd exit code %d after SIGKILL, want -1 (killed by a signal)", code)
	}
	if mac(n, "flannel.1") == "" || mac(n, "flannel-v6.1") == "" {
		t.Error("vxlan devices gone after SIGKILL")
	}
	time.Sleep(3 * time.Second)
	e.startReady(0)
	if len(results) > 0 {
		t.Log("a ping ended before weftd was ready again: the drill did not cover the whole restart (a slow machine)")
	}
	for range 2 {
		r := <-results
		t.Logf("ping %s across SIGKILL and restart: %d of %d lost", r.ip, r.lost, count)
		if r.lost > 3 {
			t.Errorf("ping %s lost %d of %d across SIGKILL and restart, want at most 3:\n%s", r.ip, r.lost, count, r.out)
		}
	}
	if got := [2]string{n.EnvValue("FLANNEL_SUBNET"), n.EnvValue("FLANNEL_IPV6_SUBNET")}; got != subnets {
		t.Errorf("subnets changed across SIGKILL: %v -> %v", subnets, got)
	}
	if got := [2]string{mac(n, "flannel.1"), mac(n, "flannel-v6.1")}; got != macs {
		t.Errorf("VtepMACs changed across SIGKILL: %v -> %v", macs, got)
	}
	if converged(t, e.lab.Nodes, 20*time.Second) {
		allPairs(t, pods)
	}
}

// tamperEnv is a converged two-node dual-stack vxlan cluster whose first node is tampered with.
func tamperEnv(t *testing.T) (e *env, pods []*lab.Pod, n, peer *lab.Node) {
	t.Helper()
	e, pods = dualVxlan(t, 2)
	if !converged(t, e.lab.Nodes, 20*time.Second) {
		t.FailNow()
	}
	return e, pods, e.lab.Nodes[0], e.lab.Nodes[1]
}

func TestTamperDeviceDeleted(t *testing.T) {
	t.Parallel()
	e, pods, n, _ := tamperEnv(t)
	before := map[string]string{}
	for _, d := range devices {
		before[d.dev] = mac(n, d.dev)
		if _, err := lab.NSRun(n.Name, "ip", "link", "del", d.dev); err != nil {
			t.Fatal(err)
		}
	}
	if mac(n, "flannel.1") != "" {
		t.Fatal("flannel.1 still there after ip link del")
	}
	for _, d := range devices {
		if err := lab.WaitFor(resyncWait, d.dev+" recreated", func() (bool, error) {
			return mac(n, d.dev) != "", nil
		}); err != nil {
			t.Fatalf("%v\n%s", err, tailN(n.Daemon.Logs(), 10))
		}
		if got := mac(n, d.dev); got != before[d.dev] {
			t.Errorf("%s recreated with MAC %s, want %s (the lease's VtepMAC, in the peers' FDB)", d.dev, got, before[d.dev])
		}
	}
	if !converged(t, e.lab.Nodes, resyncWait) {
		t.FailNow()
	}
	reachable(t, pods[1], pods[0], 20*time.Second)
	reachable(t, pods[0], pods[1], 20*time.Second)
}

func TestTamperEntriesDeleted(t *testing.T) {
	t.Parallel()
	e, pods, n, peer := tamperEnv(t)
	for _, d := range devices {
		sn, m := subnetOf(t, peer, d.subnetKey), mac(peer, d.dev)
		addr := peer.Addr
		if d.fam == "-6" {
			addr = peer.Addr6
		}
		for _, cmd := range [][]string{
			{"ip", d.fam, "route", "del", sn.String(), "dev", d.dev},
			{"bridge", "fdb", "del", m, "dev", d.dev, "dst", addr, "self"},
			{"ip", d.fam, "neigh", "del", sn.Addr().String(), "dev", d.dev},
		} {
			if _, err := lab.NSRun(n.Name, cmd...); err != nil {
				t.Fatal(err)
			}
		}
		if got, _ := vxlanState(n, d.fam, d.dev); len(got) != 0 {
			t.Fatalf("%s still holds %q after deleting by hand", d.dev, got)
		}
	}
	if !converged(t, e.lab.Nodes, resyncWait) {
		t.FailNow()
	}
	reachable(t, pods[0], pods[1], 20*time.Second)
}

func TestTamperFirewallFlushed(t *testing.T) {
	t.Parallel()
	_, pods, n, _ := tamperEnv(t)
	type chain struct{ tool, table, chain, jumpFrom string }
	var chains []chain
	for _, tool := range []string{"iptables", "ip6tables"} {
		chains = append(chains, chain{tool, "filter", "FLANNEL-FWD", "FORWARD"}, chain{tool, "nat", "FLANNEL-POSTRTG", "POSTROUTING"})
	}
	list := func(c chain, name string) string {
		out, err := lab.NSRun(n.Name, c.tool, "-t", c.table, "-S", name)
		if err != nil {
			return err.Error()
		}
		return out
	}
	before := map[chain]string{}
	for _, c := range chains {
		before[c] = list(c, c.chain)
		if strings.Count(before[c], "\n-A ") < 2 || !strings.Contains(list(c, c.jumpFrom), "-j "+c.chain) {
			t.Fatalf("%s -t %s: %s or the jump from %s missing before the flush:\n%s", c.tool, c.table, c.chain, c.jumpFrom, before[c])
		}
	}
	logged := len(n.Daemon.Logs())
	for _, tool := range []string{"iptables", "ip6tables"} {
		for _, table := range []string{"filter", "nat"} {
			if _, err := lab.NSRun(n.Name, tool, "-t", table, "-F"); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The flush took: each chain is empty now, or weftd's 1 s resync has already rewritten it since the flush
	// began (its log says so), which CI's load makes likely between the four flushes and this check.
	for _, c := range chains {
		rewritten := strings.Contains(n.Daemon.Logs()[logged:], c.tool+": writing "+c.table+"/"+c.chain)
		if strings.Contains(list(c, c.chain), "-A ") && !rewritten {
			t.Fatalf("%s %s not flushed", c.tool, c.chain)
		}
	}
	for _, c := range chains {
		if err := lab.WaitFor(30*time.Second, c.tool+" "+c.chain+" restored", func() (bool, error) {
			return list(c, c.chain) == before[c] && strings.Contains(list(c, c.jumpFrom), "-j "+c.chain), nil
		}); err != nil {
			t.Errorf("%v\n%s:\n%s\n%s:\n%s", err, c.chain, list(c, c.chain), c.jumpFrom, list(c, c.jumpFrom))
		}
	}
	reachable(t, pods[0], pods[1], 20*time.Second)
}

// In Kubernetes mode the previous VtepMACs come from the node's annotations: devices lost while weftd is down
// come back with them.
func TestRestartKubeKeepsVtepMAC(t *testing.T) {
	t.Parallel()
	testenv.Bin(t, "kube-apiserver")
	e := newEnv(t, 2)
	k, err := e.lab.StartKube()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, n := range e.lab.Nodes {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name},
			Spec: corev1.NodeSpec{PodCIDR: fmt.Sprintf("10.244.%d.0/24", i+1),
				PodCIDRs: []string{fmt.Sprintf("10.244.%d.0/24", i+1), fmt.Sprintf("fd00:244:0:%d::/64", i+1)}}}
		if _, err := k.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	o := lab.DaemonOptions{Kube: k, NetConf: fmt.Sprintf(netDual, "vxlan")}
	var pods []*lab.Pod
	for i := range e.lab.Nodes {
		e.startReadyWith(i, o)
		pods = append(pods, e.pod(i, "p", e.plugin))
	}
	if !converged(t, e.lab.Nodes, 20*time.Second) {
		t.FailNow()
	}
	n := e.lab.Nodes[0]
	before := [2]string{mac(n, "flannel.1"), mac(n, "flannel-v6.1")}
	if err := n.Daemon.Stop(); err != nil {
		t.Fatalf("weftd did not exit cleanly on SIGTERM: %v", err)
	}
	for _, d := range devices {
		if _, err := lab.NSRun(n.Name, "ip", "link", "del", d.dev); err != nil {
			t.Fatal(err)
		}
	}
	e.startReadyWith(0, o)
	if got := [2]string{mac(n, "flannel.1"), mac(n, "flannel-v6.1")}; got != before {
		t.Errorf("VtepMACs changed across restart with the devices deleted: %v -> %v", before, got)
	}
	if converged(t, e.lab.Nodes, 20*time.Second) {
		reachable(t, pods[1], pods[0], 20*time.Second)
	}
}

// hostGWRoutes are node n's gateway routes on eth0 into the cluster networks, normalised "<dst> via <gw>".
func hostGWRoutes(n *lab.Node) ([]string, error) {
	var out []string
	for _, fam := range []string{"-4", "-6"} {
		r, err := lab.NSRun(n.Name, "ip", "-o", fam, "route", "show", "dev", "eth0")
		if err != nil {
			return nil, err
		}
		for _, l := range strings.Split(r, "\n") {
			f := strings.Fields(l)
			if len(f) >= 3 && f[1] == "via" && (strings.HasPrefix(f[0], "10.244.") || strings.HasPrefix(f[0], "fd00:244:")) {
				out = append(out, f[0]+" via "+f[2])
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// hostGWConverged waits until every node routes exactly each other node's subnets via that node's address.
func hostGWConverged(t *testing.T, nodes []*lab.Node, timeout time.Duration) bool {
	t.Helper()
	var bad []string
	_ = lab.WaitFor(timeout, "host-gw routes", func() (bool, error) {
		bad = nil
		for _, n := range nodes {
			var want []string
			for _, p := range nodes {
				if p != n {
					want = append(want, subnetOf(t, p, "FLANNEL_SUBNET").String()+" via "+p.Addr,
						subnetOf(t, p, "FLANNEL_IPV6_SUBNET").String()+" via "+p.Addr6)
				}
			}
			sort.Strings(want)
			got, err := hostGWRoutes(n)
			if err != nil || strings.Join(got, "\n") != strings.Join(want, "\n") {
				bad = append(bad, fmt.Sprintf("%s: got %q want %q (%v)", n.Name, got, want, err))
			}
		}
		return len(bad) == 0, nil
	})
	if len(bad) > 0 {
		t.Errorf("host-gw routes not converged within %s:\n  %s", timeout, strings.Join(bad, "\n  "))
	}
	return len(bad) == 0
}

// host-gw: routes deleted by hand come back, and a removed node's routes go, in both families.
func TestTamperHostGW(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 3)
	if err := e.lab.PutNetConfig(fmt.Sprintf(netDual, "host-gw")); err != nil {
		t.Fatal(err)
	}
	var pods []*lab.Pod
	for i := range e.lab.Nodes {
		e.startReady(i)
		pods = append(pods, e.pod(i, "p", e.plugin))
	}
	if !hostGWConverged(t, e.lab.Nodes, 20*time.Second) {
		t.FailNow()
	}
	n, peer, gone := e.lab.Nodes[0], e.lab.Nodes[1], e.lab.Nodes[2]
	for _, key := range []string{"FLANNEL_SUBNET", "FLANNEL_IPV6_SUBNET"} {
		if _, err := lab.NSRun(n.Name, "ip", "route", "del", subnetOf(t, peer, key).String()); err != nil {
			t.Fatal(err)
		}
	}
	if !hostGWConverged(t, e.lab.Nodes, resyncWait) {
		t.FailNow()
	}
	reachable(t, pods[0], pods[1], 20*time.Second)

	sn4 := subnetOf(t, gone, "FLANNEL_SUBNET")
	if err := gone.Daemon.Stop(); err != nil {
		t.Fatal(err)
	}
	out, err := e.lab.Etcdctl("get", "--prefix", "--keys-only", "/coreos.com/network/subnets/"+strings.Replace(sn4.String(), "/", "-", 1))
	key := strings.TrimSpace(out)
	if err != nil || !strings.Contains(key, "&") {
		t.Fatalf("dual-stack lease of %s (%s) not found: %q %v", gone.Name, sn4, key, err)
	}
	if _, err := e.lab.Etcdctl("del", key); err != nil {
		t.Fatal(err)
	}
	hostGWConverged(t, e.lab.Nodes[:2], 15*time.Second)
}
