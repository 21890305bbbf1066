package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftnet/weft/internal/lab"
	"github.com/weftnet/weft/internal/testenv"
)

// The in-place upgrade drill (the drop-in migration): a cluster of upstream flanneld v0.28.10 nodes with pods
// wired by upstream's CNI meta-plugin; on node 0 flanneld is stopped with SIGTERM (as a DaemonSet rollout does)
// and weftd started with the same flags and files, then rolled back to flanneld. Across each swap the node keeps
// its subnet, its etcd lease or node annotations, subnet.env's values and its VXLAN devices' MACs; a ping running
// across the swap loses at most a few packets; a pod made after the swap is in the node's subnet and reaches the
// others. The weftd-first cases run the same swaps the other way round: flanneld takes over a weftd node.

// maxSwapLoss bounds the echo requests a ping at pingInterval may lose across one swap: the daemons leave the
// kernel state in place, so a drop-in swap loses nothing or a handful.
const (
	maxSwapLoss  = 20
	pingInterval = 100 * time.Millisecond
	// settle is how long the ping keeps running after the new daemon wrote subnet.env, so that its first
	// reconciliation (routes, FDB, neighbours, iptables) happens under traffic.
	settle = 4 * time.Second
)

type upgradeCase struct {
	name       string
	kube       bool
	backend    string
	dual       bool
	weftdFirst bool
}

func TestUpgrade(t *testing.T) {
	cases := []upgradeCase{
		{name: "etcd/vxlan/v4", backend: "vxlan"},
		{name: "etcd/host-gw/dual", backend: "host-gw", dual: true},
		{name: "kube/vxlan/dual", kube: true, backend: "vxlan", dual: true},
		{name: "kube/host-gw/v4", kube: true, backend: "host-gw"},
		{name: "etcd/vxlan/dual/weftd-first", backend: "vxlan", dual: true, weftdFirst: true},
		{name: "kube/vxlan/v4/weftd-first", kube: true, backend: "vxlan", weftdFirst: true},
	}
	for _, c := range cases {
		c := c
		t.Run(c.name, func(t *testing.T) {
			// Every lab has its own namespaces (random prefix), so etcd, kube-apiserver and the daemons' ports
			// never collide between cases.
			t.Parallel()
			runUpgrade(t, c)
		})
	}
}

// daemonKind is one side of the swap: a daemon and the CNI meta-plugin its DaemonSet installs.
type daemonKind struct {
	name, bin, cni string
}

type upgrade struct {
	c     upgradeCase
	e     *env
	kube  *lab.Kube
	opts  lab.DaemonOptions
	pods  []*lab.Pod // one per node, made before the first swap
	swaps int
}

func runUpgrade(t *testing.T, c upgradeCase) {
	e := newEnv(t, 3)
	u := &upgrade{c: c, e: e}
	swapped := e.lab.Nodes[0]
	t.Cleanup(func() {
		// newEnv logs the current daemon only; the swapped node ran both.
		if t.Failed() {
			for _, name := range []string{"flanneld", "weftd"} {
				b, _ := os.ReadFile(filepath.Join(swapped.Dir, name+".log"))
				t.Logf("--- %s %s.log (both runs):\n%s", swapped.Name, name, tailN(string(b), 60))
			}
		}
	})
	conf := fmt.Sprintf(netV4, c.backend)
	if c.dual {
		conf = fmt.Sprintf(netDual, c.backend)
	}
	if c.kube {
		testenv.Bin(t, "kube-apiserver")
		u.kube, u.opts = startKubeNodes(t, e, conf, c.dual)
	} else if err := e.lab.PutNetConfig(conf); err != nil {
		t.Fatal(err)
	}
	flanneld := daemonKind{"flanneld", e.flanneld, e.upCNI}
	weftd := daemonKind{"weftd", e.weftd, e.plugin}
	from, to := flanneld, weftd
	if c.weftdFirst {
		from, to = weftd, flanneld
	}
	for i := range e.lab.Nodes {
		e.start(i, from.bin, u.opts)
		u.pods = append(u.pods, e.pod(i, "p", from.cni))
	}
	for _, p := range u.pods {
		if p.IP4 == "" || (c.dual && p.IP6 == "") {
			t.Fatalf("pod %s got %q / %q, want IPv4%s", p.Name, p.IP4, p.IP6, map[bool]string{true: " and IPv6"}[c.dual])
		}
	}
	allPairs(t, u.pods)
	if t.Failed() {
		t.FailNow()
	}

	var losses []string
	for _, s := range []struct {
		name     string
		from, to daemonKind
	}{
		{from.name + " to " + to.name, from, to},
		{"back to " + from.name, to, from},
	} {
		if !t.Run(s.name, func(t *testing.T) { losses = append(losses, u.swap(t, s.from, s.to)...) }) {
			break // the rollback of a broken swap proves nothing
		}
	}
	t.Logf("%s: ping loss per swap (%v interval): %s", c.name, pingInterval, strings.Join(losses, "; "))
}

// startKubeNodes starts kube-apiserver, creates the Node objects with their pod CIDRs and returns the daemon
// options for Kubernetes mode, authenticated as dist/rbac.yaml's ServiceAccount (as in TestKube).
func startKubeNodes(t *testing.T, e *env, conf string, dual bool) (*lab.Kube, lab.DaemonOptions) {
	t.Helper()
	k, err := e.lab.StartKube()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, n := range e.lab.Nodes {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name, Annotations: map[string]string{"node.alpha.kubernetes.io/ttl": "0"}},
			Spec: corev1.NodeSpec{PodCIDR: fmt.Sprintf("10.244.%d.0/24", i+1), PodCIDRs: []string{fmt.Sprintf("10.244.%d.0/24", i+1)}}}
		if dual {
			node.Spec.PodCIDRs = append(node.Spec.PodCIDRs, fmt.Sprintf("fd00:244:0:%d::/64", i+1))
		}
		if _, err := k.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	root, _ := testenv.RepoRoot()
	saConfig, err := k.ApplyRBAC(ctx, filepath.Join(root, "dist", "rbac.yaml"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return k, lab.DaemonOptions{Kube: &lab.Kube{URL: k.URL, Kubeconfig: saConfig}, NetConf: conf}
}

// swap replaces node 0's daemon under a running ping, checks what the node must keep, and makes new pods there.
// It returns the measured losses for the report.
func (u *upgrade) swap(t *testing.T, from, to daemonKind) []string {
	u.swaps++
	n := u.e.lab.Nodes[0]
	before := u.state(t, n)
	u.requireState(t, before)

	targets := []string{u.pods[1].IP4}
	if u.c.dual {
		targets = append(targets, u.pods[1].IP6)
	}
	var runs []*lab.PingRun
	for _, ip := range targets {
		r, err := u.pods[0].StartPing(ip, pingInterval)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
	}
	stopPings := func() []lab.PingStats {
		var out []lab.PingStats
		for _, r := range runs {
			s, err := r.Stop()
			if err != nil {
				t.Errorf("ping %s -> %s: %v", u.pods[0].Name, r.Target, err)
			}
			out = append(out, s)
		}
		runs = nil
		return out
	}
	defer stopPings()
	time.Sleep(time.Second) // traffic flowing before the swap, so the loss counts the swap and not ping's start

	fi, _ := os.Stat(n.SubnetFile())
	if err := n.Daemon.Stop(); err != nil {
		// A rollout does not look at the exit code; weftd promises a clean exit, upstream's is only reported.
		if from.name == "weftd" {
			t.Errorf("weftd did not exit cleanly on SIGTERM: %v", err)
		} else {
			t.Logf("%s exited on SIGTERM with %v", from.name, err)
		}
	}
	since := time.Now()
	o := u.opts
	o.Binary = to.bin
	if _, err := n.StartDaemon(o); err != nil {
		t.Fatal(err)
	}
	if _, err := n.WaitSubnetEnvRewritten(fi, since, 30*time.Second); err != nil {
		t.Fatalf("%s did not set up after %s: %v", to.name, from.name, err)
	}
	time.Sleep(settle)

	var losses []string
	for i, s := range stopPings() {
		msg := fmt.Sprintf("%s -> %s, %s -> %s: %s", from.name, to.name, u.pods[0].Name, targets[i], s)
		t.Logf("ping across the swap %s", msg)
		losses = append(losses, msg)
		if s.Received == 0 || s.Lost() > maxSwapLoss {
			t.Errorf("ping across the swap %s; want at most %d lost", msg, maxSwapLoss)
		}
	}

	after := u.state(t, n)
	for _, k := range sortedKeys(before, after) {
		if before[k] != after[k] {
			t.Errorf("%s changed across the swap %s -> %s: %q -> %q", k, from.name, to.name, before[k], after[k])
		}
	}

	// New pods, made by the meta-plugin the new daemon's DaemonSet installs and by the one already on the node
	// (a rollout may leave it in place), get addresses in the node's subnets and reach the other nodes' pods.
	fresh := []*lab.Pod{}
	for _, cni := range []string{to.cni, from.cni} {
		name := fmt.Sprintf("s%d-%d", u.swaps, len(fresh))
		p, err := n.AddPod(name, lab.CNIOptions{Plugin: cni})
		if err != nil {
			t.Fatalf("pod after the swap (%s): %v", filepath.Base(cni), err)
		}
		u.inSubnet(t, p.Name, p.IP4, after["subnet.env FLANNEL_SUBNET"])
		if u.c.dual {
			u.inSubnet(t, p.Name, p.IP6, after["subnet.env FLANNEL_IPV6_SUBNET"])
		}
		fresh = append(fresh, p)
	}
	allPairs(t, append(fresh, u.pods[1:]...))
	return losses
}

func (u *upgrade) inSubnet(t *testing.T, pod, ip, subnet string) {
	t.Helper()
	pfx, err := netip.ParsePrefix(subnet)
	addr, aerr := netip.ParseAddr(ip)
	if err != nil || aerr != nil || !pfx.Masked().Contains(addr) {
		t.Errorf("pod %s got %q, want an address in the node's subnet %q", pod, ip, subnet)
	}
}

// state is what a node must keep across a swap, by a name that says where it lives.
func (u *upgrade) state(t *testing.T, n *lab.Node) map[string]string {
	t.Helper()
	s := map[string]string{}
	keys := []string{"FLANNEL_NETWORK", "FLANNEL_SUBNET", "FLANNEL_MTU", "FLANNEL_IPMASQ"}
	if u.c.dual {
		keys = append(keys, "FLANNEL_IPV6_NETWORK", "FLANNEL_IPV6_SUBNET")
	}
	for _, k := range keys {
		s["subnet.env "+k] = n.EnvValue(k)
	}
	if u.c.backend == "vxlan" {
		devs := []string{"flannel.1"}
		if u.c.dual {
			devs = append(devs, "flannel-v6.1")
		}
		for _, d := range devs {
			out, _ := lab.NSRun(n.Name, "cat", "/sys/class/net/"+d+"/address")
			s[d+" MAC"] = strings.TrimSpace(out)
		}
	}
	if u.c.kube {
		node, err := u.kube.Client.CoreV1().Nodes().Get(context.Background(), n.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range node.Annotations {
			if strings.HasPrefix(k, "flannel.alpha.coreos.com/") {
				s["annotation "+k] = canonicalJSON(v)
			}
		}
		return s
	}
	for k, v := range u.lease(t, n) {
		s[k] = v
	}
	return s
}

// lease finds the node's etcd lease by its public IP and returns its key and the value's fields other nodes use.
func (u *upgrade) lease(t *testing.T, n *lab.Node) map[string]string {
	t.Helper()
	out, err := u.e.lab.Etcdctl("get", "--prefix", "/coreos.com/network/subnets/")
	if err != nil {
		t.Fatal(err)
	}
	type data struct {
		VNI     int
		VtepMAC string
	}
	var found []map[string]string
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := 0; i+1 < len(lines); i += 2 {
		var v struct {
			PublicIP, PublicIPv6, BackendType string
			BackendData, BackendV6Data        *data
		}
		if err := json.Unmarshal([]byte(lines[i+1]), &v); err != nil {
			t.Fatalf("lease %s: value %q: %v", lines[i], lines[i+1], err)
		}
		if v.PublicIP != n.Addr {
			continue
		}
		l := map[string]string{"lease key": lines[i], "lease PublicIP": v.PublicIP, "lease BackendType": v.BackendType}
		if u.c.dual {
			l["lease PublicIPv6"] = v.PublicIPv6
		}
		if u.c.backend == "vxlan" {
			for name, d := range map[string]*data{"BackendData": v.BackendData, "BackendV6Data": v.BackendV6Data} {
				if d == nil {
					d = &data{}
				}
				if name == "BackendV6Data" && !u.c.dual {
					continue
				}
				l["lease "+name+".VtepMAC"] = d.VtepMAC
				l["lease "+name+".VNI"] = fmt.Sprint(d.VNI)
			}
		}
		found = append(found, l)
	}
	if len(found) != 1 {
		t.Fatalf("%d leases with PublicIP %s, want exactly 1:\n%s", len(found), n.Addr, out)
	}
	return found[0]
}

// requireState makes sure the values compared across a swap exist, so that "unchanged" is not "absent on both
// sides".
func (u *upgrade) requireState(t *testing.T, s map[string]string) {
	t.Helper()
	want := []string{"subnet.env FLANNEL_NETWORK", "subnet.env FLANNEL_SUBNET", "subnet.env FLANNEL_MTU", "subnet.env FLANNEL_IPMASQ"}
	if u.c.dual {
		want = append(want, "subnet.env FLANNEL_IPV6_NETWORK", "subnet.env FLANNEL_IPV6_SUBNET")
	}
	if u.c.backend == "vxlan" {
		want = append(want, "flannel.1 MAC")
		if u.c.dual {
			want = append(want, "flannel-v6.1 MAC")
		}
	}
	const a = "annotation flannel.alpha.coreos.com/"
	switch {
	case u.c.kube:
		want = append(want, a+"public-ip", a+"backend-type", a+"kube-subnet-manager", a+"backend-data")
		if u.c.dual {
			want = append(want, a+"public-ipv6", a+"backend-v6-data")
		}
	default:
		want = append(want, "lease key", "lease PublicIP", "lease BackendType")
		if u.c.dual {
			want = append(want, "lease PublicIPv6")
		}
		if u.c.backend == "vxlan" {
			want = append(want, "lease BackendData.VtepMAC")
			if u.c.dual {
				want = append(want, "lease BackendV6Data.VtepMAC")
			}
		}
	}
	for _, k := range want {
		if s[k] == "" {
			t.Fatalf("before the swap: %s is empty; state: %v", k, s)
		}
	}
	if u.c.backend == "vxlan" {
		// The device and what the node publishes agree, so "kept" means the peers' FDB entries stay right.
		mac := s["flannel.1 MAC"]
		if pub := s["lease BackendData.VtepMAC"] + s[a+"backend-data"]; !strings.Contains(pub, mac) {
			t.Fatalf("before the swap: flannel.1 has MAC %s, the node publishes %s", mac, pub)
		}
	}
}

// canonicalJSON re-encodes a JSON annotation value so that key order and spacing do not count as a change;
// other values are returned as they are.
func canonicalJSON(v string) string {
	var x any
	if err := json.Unmarshal([]byte(v), &x); err != nil {
		return v
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(x); err != nil {
		return v
	}
	return strings.TrimSpace(b.String())
}

func sortedKeys(ms ...map[string]string) []string {
	seen := map[string]bool{}
	var keys []string
	for _, m := range ms {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	return keys
}
