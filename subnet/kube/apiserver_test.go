package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/weftnet/weft/internal/testenv"
	"github.com/weftnet/weft/subnet"
)

// upstreamRules are the ClusterRole rules of upstream's kube-flannel.yml. The manager runs with exactly these
// against the real API server, so a cluster set up for flanneld needs no new permissions for weftd.
var upstreamRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}},
	{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "watch"}},
	{APIGroups: []string{""}, Resources: []string{"nodes/status"}, Verbs: []string{"patch"}},
}

// kubeEnv is one API server shared by the subtests of TestAgainstAPIServer; each subtest uses its own node
// names and annotation prefix, so the others' nodes are never its peers.
type kubeEnv struct {
	*testenv.KubeEnv
	sa kubernetes.Interface // limited to upstreamRules
}

func TestAgainstAPIServer(t *testing.T) {
	k := testenv.StartAPIServer(t)
	rc := k.RESTConfigForToken(k.ServiceAccountToken(t, "kube-flannel", "flannel", upstreamRules))
	sa, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	e := &kubeEnv{KubeEnv: k, sa: sa}
	t.Run("acquire writes exactly the annotations", e.testAcquireAnnotations)
	t.Run("pod CIDR outside the network", e.testPodCIDROutside)
	t.Run("overwrite and node public IP annotations", e.testOverwrites)
	t.Run("peers see each other", e.testPeers)
	t.Run("own lease removed with the node", e.testWatchOwnLease)
	t.Run("complete lease sets NetworkUnavailable", e.testCompleteLease)
	t.Run("restart keeps the VtepMAC", e.testRestartKeepsMAC)
	t.Run("dual stack, one family changing at a time", e.testDualStack)
	// Last: the controller manager assigns pod CIDRs to every node without one.
	t.Run("pod CIDR assigned later by nodeipam", e.testPodCIDRAssignedLater)
}

// prefixFor gives each subtest its own annotation prefix (no trailing "/": the manager appends it).
func prefixFor(t *testing.T) string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(t.Name()[strings.LastIndex(t.Name(), "/")+1:]))
	return strings.Trim(name[:min(len(name), 40)], "-") + ".weft.test"
}

func (e *kubeEnv) manager(t *testing.T, nodeName, conf string, setUnavailable bool) *Manager {
	t.Helper()
	path := filepath.Join(t.TempDir(), "net-conf.json")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	m, err := New(ctx, Options{Client: e.sa, NodeName: nodeName, NetConfPath: path, AnnotationPrefix: prefixFor(t),
		SetNodeNetworkUnavailable: setUnavailable})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// createNode creates a node as the admin; ann may be nil (upstream panics on such a node).
func (e *kubeEnv) createNode(t *testing.T, name string, cidrs []string, ann map[string]string) {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: ann}, Spec: corev1.NodeSpec{PodCIDRs: cidrs}}
	if len(cidrs) > 0 {
		n.Spec.PodCIDR = cidrs[0]
	}
	if _, err := e.Client.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create node %s: %v", name, err)
	}
	// Gone after the subtest: the controller manager of the last one refuses to start beside pod CIDRs
	// outside its cluster CIDR.
	t.Cleanup(func() {
		err := e.Client.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete node %s: %v", name, err)
		}
	})
}

func (e *kubeEnv) getNode(t *testing.T, name string) *corev1.Node {
	t.Helper()
	n, err := e.Client.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// ours returns the node's annotations under the subtest's prefix.
func ours(t *testing.T, n *corev1.Node) map[string]string {
	got := map[string]string{}
	for k, v := range n.Annotations {
		if strings.HasPrefix(k, prefixFor(t)+"/") {
			got[strings.TrimPrefix(k, prefixFor(t)+"/")] = v
		}
	}
	return got
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func vxlanAttrs(ip, mac string) *subnet.LeaseAttrs {
	return &subnet.LeaseAttrs{PublicIP: netip.MustParseAddr(ip), BackendType: "vxlan",
		BackendData: json.RawMessage(fmt.Sprintf(`{"VNI":1,"VtepMAC":%q}`, mac))}
}

func (e *kubeEnv) testAcquireAnnotations(t *testing.T) {
	ctx := ctxFor(t)
	e.createNode(t, "acq-1", []string{"10.244.1.0/24"}, nil)
	m := e.manager(t, "acq-1", v4conf, true)
	l, err := m.AcquireLease(ctx, vxlanAttrs("192.0.2.1", "0e:00:00:00:01:01"))
	if err != nil {
		t.Fatal(err)
	}
	if !l.EnableIPv4 || l.EnableIPv6 || l.Subnet != netip.MustParsePrefix("10.244.1.0/24") {
		t.Fatalf("lease %+v, want IPv4 only 10.244.1.0/24", l)
	}
	want := map[string]string{
		"kube-subnet-manager": "true", "backend-type": "vxlan", "public-ip": "192.0.2.1",
		"backend-data": `{"VNI":1,"VtepMAC":"0e:00:00:00:01:01"}`,
	}
	if got := ours(t, e.getNode(t, "acq-1")); !maps.Equal(got, want) {
		t.Fatalf("annotations %v, want %v", got, want)
	}
	// Re-acquiring with a new MAC updates only what changed.
	if _, err := m.AcquireLease(ctx, vxlanAttrs("192.0.2.1", "0e:00:00:00:01:02")); err != nil {
		t.Fatal(err)
	}
	want["backend-data"] = `{"VNI":1,"VtepMAC":"0e:00:00:00:01:02"}`
	if got := ours(t, e.getNode(t, "acq-1")); !maps.Equal(got, want) {
		t.Fatalf("after re-acquire: annotations %v, want %v", got, want)
	}
}

func (e *kubeEnv) testPodCIDROutside(t *testing.T) {
	e.createNode(t, "out-1", []string{"10.99.1.0/24"}, map[string]string{})
	m := e.manager(t, "out-1", v4conf, true)
	_, err := m.AcquireLease(ctxFor(t), vxlanAttrs("192.0.2.1", "0e:00:00:00:02:01"))
	if err == nil || !strings.Contains(err.Error(), `node "out-1"`) || !strings.Contains(err.Error(), "10.99.1.0/24") ||
		!strings.Contains(err.Error(), "10.244.0.0/16") {
		t.Fatalf("err %v, want one naming the node, its pod CIDR and the Network", err)
	}
	if got := ours(t, e.getNode(t, "out-1")); len(got) != 0 {
		t.Fatalf("a refused lease must publish nothing, got %v", got)
	}
}

func (e *kubeEnv) testOverwrites(t *testing.T) {
	ctx := ctxFor(t)
	p := prefixFor(t) + "/"
	e.createNode(t, "ovr-1", []string{"10.244.3.0/24"}, map[string]string{
		p + "public-ip-overwrite": "198.51.100.3", p + "node-public-ip": "203.0.113.3"})
	m := e.manager(t, "ovr-1", v4conf, true)
	v4, v6, err := m.NodePublicIPs(ctx)
	if err != nil || v4 != "203.0.113.3" || v6 != "" {
		t.Fatalf("NodePublicIPs = %q, %q, %v; want 203.0.113.3 from node-public-ip", v4, v6, err)
	}
	l, err := m.AcquireLease(ctx, vxlanAttrs("192.0.2.3", "0e:00:00:00:03:01"))
	if err != nil {
		t.Fatal(err)
	}
	if l.Attrs.PublicIP != netip.MustParseAddr("198.51.100.3") {
		t.Fatalf("lease public IP %v, want the overwrite 198.51.100.3", l.Attrs.PublicIP)
	}
	if got := ours(t, e.getNode(t, "ovr-1"))["public-ip"]; got != "198.51.100.3" {
		t.Fatalf("public-ip annotation %q, want the overwrite", got)
	}
}

// watchLeases runs m.WatchLeases until the subtest ends and returns its channel.
func watchLeases(t *testing.T, m *Manager) <-chan []subnet.Event {
	ch := make(chan []subnet.Event, 64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = m.WatchLeases(ctx, ch) }()
	t.Cleanup(func() { cancel(); <-done })
	return ch
}

// waitEvent reads batches until one holds an event satisfying match.
func waitEvent(t *testing.T, ch <-chan []subnet.Event, what string, match func(subnet.Event) bool) subnet.Event {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case b := <-ch:
			for _, ev := range b {
				if match(ev) {
					return ev
				}
			}
		case <-deadline:
			t.Fatalf("no event: %s", what)
		}
	}
}

func isEvent(typ subnet.EventType, sn string, check func(subnet.Lease) bool) func(subnet.Event) bool {
	return func(ev subnet.Event) bool {
		return ev.Type == typ && ev.Lease.Subnet.String() == sn && (check == nil || check(ev.Lease))
	}
}

func (e *kubeEnv) testPeers(t *testing.T) {
	ctx := ctxFor(t)
	e.createNode(t, "peer-a", []string{"10.244.11.0/24"}, nil)
	e.createNode(t, "peer-b", []string{"10.244.12.0/24"}, nil)
	e.createNode(t, "peer-c", []string{"10.244.13.0/24"}, nil) // no manager: never a peer
	ma, mb := e.manager(t, "peer-a", v4conf, true), e.manager(t, "peer-b", v4conf, true)
	if _, err := ma.AcquireLease(ctx, vxlanAttrs("192.0.2.11", "0e:00:00:00:11:01")); err != nil {
		t.Fatal(err)
	}
	chB := watchLeases(t, mb)
	snap := <-chB // the first batch is the snapshot
	if len(snap) != 1 || snap[0].Type != subnet.EventAdded || snap[0].Lease.Subnet.String() != "10.244.11.0/24" ||
		snap[0].Lease.Attrs.PublicIP.String() != "192.0.2.11" || !strings.Contains(string(snap[0].Lease.Attrs.BackendData), "0e:00:00:00:11:01") {
		t.Fatalf("b's snapshot %+v, want only a's lease", snap)
	}
	if _, err := mb.AcquireLease(ctx, vxlanAttrs("192.0.2.12", "0e:00:00:00:12:01")); err != nil {
		t.Fatal(err)
	}
	chA := watchLeases(t, ma)
	waitEvent(t, chA, "a sees b's lease", isEvent(subnet.EventAdded, "10.244.12.0/24", func(l subnet.Lease) bool {
		return l.Attrs.PublicIP.String() == "192.0.2.12" && l.Attrs.BackendType == "vxlan"
	}))
	// b's VtepMAC changes: a sees the updated lease.
	if _, err := mb.AcquireLease(ctx, vxlanAttrs("192.0.2.12", "0e:00:00:00:12:02")); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, chA, "a sees b's new MAC", isEvent(subnet.EventAdded, "10.244.12.0/24", func(l subnet.Lease) bool {
		return strings.Contains(string(l.Attrs.BackendData), "0e:00:00:00:12:02")
	}))
	// b is deleted: a sees it go.
	if err := e.Client.CoreV1().Nodes().Delete(ctx, "peer-b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, chA, "a sees b removed", isEvent(subnet.EventRemoved, "10.244.12.0/24", nil))
	// peer-c never took part: a fresh watcher's snapshot holds a only.
	snap = <-watchLeases(t, ma)
	if len(snap) != 1 || snap[0].Lease.Subnet.String() != "10.244.11.0/24" {
		t.Fatalf("snapshot after the removal %+v, want only a (c is no peer, b is gone)", snap)
	}
}

func (e *kubeEnv) testWatchOwnLease(t *testing.T) {
	ctx := ctxFor(t)
	e.createNode(t, "own-1", []string{"10.244.21.0/24"}, nil)
	m := e.manager(t, "own-1", v4conf, true)
	l, err := m.AcquireLease(ctx, vxlanAttrs("192.0.2.21", "0e:00:00:00:21:01"))
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan []subnet.Event, 8)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = m.WatchLease(wctx, l, ch) }()
	defer func() { cancel(); <-done }()
	// Someone strips the kube-subnet-manager annotation: the lease is gone as far as peers are concerned.
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:null}}}`, prefixFor(t)+"/kube-subnet-manager")
	if _, err := e.Client.CoreV1().Nodes().Patch(ctx, "own-1", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ch, "own lease removed with its annotation", isEvent(subnet.EventRemoved, "10.244.21.0/24", nil))
	if _, err := m.AcquireLease(ctx, vxlanAttrs("192.0.2.21", "0e:00:00:00:21:01")); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ch, "own lease back", isEvent(subnet.EventAdded, "10.244.21.0/24", nil))
	if err := e.Client.CoreV1().Nodes().Delete(ctx, "own-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ch, "own lease removed with the node", isEvent(subnet.EventRemoved, "10.244.21.0/24", nil))
}

func networkUnavailable(n *corev1.Node) *corev1.NodeCondition {
	for i, c := range n.Status.Conditions {
		if c.Type == corev1.NodeNetworkUnavailable {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

func (e *kubeEnv) testCompleteLease(t *testing.T) {
	ctx := ctxFor(t)
	e.createNode(t, "done-1", []string{"10.244.31.0/24"}, nil)
	e.createNode(t, "done-2", []string{"10.244.32.0/24"}, nil)
	// A condition someone else set before: CompleteLease must replace it, not add a second one.
	n := e.getNode(t, "done-1")
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionTrue, Reason: "NoRouteCreated"}}
	if _, err := e.Client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		node string
		set  bool
	}{{"done-1", true}, {"done-2", false}} {
		m := e.manager(t, c.node, v4conf, c.set)
		l, err := m.AcquireLease(ctx, vxlanAttrs("192.0.2.31", "0e:00:00:00:31:01"))
		if err != nil {
			t.Fatal(err)
		}
		if err := m.CompleteLease(ctx, l); err != nil {
			t.Fatalf("%s: %v", c.node, err)
		}
	}
	n = e.getNode(t, "done-1")
	if c := networkUnavailable(n); c == nil || c.Status != corev1.ConditionFalse || c.Reason != "FlannelIsUp" {
		t.Fatalf("done-1 NetworkUnavailable %+v, want False/FlannelIsUp", c)
	}
	if len(n.Status.Conditions) != 1 {
		t.Fatalf("done-1 conditions %+v, want the one replaced", n.Status.Conditions)
	}
	if c := networkUnavailable(e.getNode(t, "done-2")); c != nil {
		t.Fatalf("done-2 NetworkUnavailable %+v although SetNodeNetworkUnavailable is false", c)
	}
}

func (e *kubeEnv) testRestartKeepsMAC(t *testing.T) {
	ctx := ctxFor(t)
	e.createNode(t, "rst-1", []string{"10.244.41.0/24"}, map[string]string{"node.alpha.kubernetes.io/ttl": "0"})
	first := e.manager(t, "rst-1", v4conf, true)
	if prev, err := first.PreviousLease(ctx, nil); err != nil || prev != nil {
		t.Fatalf("PreviousLease on a fresh node = %+v, %v; want none", prev, err)
	}
	if _, err := first.AcquireLease(ctx, vxlanAttrs("192.0.2.41", "0e:00:00:00:41:01")); err != nil {
		t.Fatal(err)
	}
	again := e.manager(t, "rst-1", v4conf, true) // weftd restarted
	prev, err := again.PreviousLease(ctx, nil)
	if err != nil || prev == nil {
		t.Fatalf("PreviousLease after a restart = %v, %v", prev, err)
	}
	var d struct{ VtepMAC string }
	if err := json.Unmarshal(prev.Attrs.BackendData, &d); err != nil || d.VtepMAC != "0e:00:00:00:41:01" {
		t.Fatalf("previous backend data %s (%v), want VtepMAC 0e:00:00:00:41:01", prev.Attrs.BackendData, err)
	}
	if prev.Subnet.String() != "10.244.41.0/24" || prev.Attrs.PublicIP.String() != "192.0.2.41" {
		t.Fatalf("previous lease %+v", prev)
	}
}

const dualConf = `{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244::/56","Backend":{"Type":"vxlan"}}`

func dualAttrs(v4, v6, mac4, mac6 string) *subnet.LeaseAttrs {
	a := vxlanAttrs(v4, mac4)
	a.PublicIPv6 = netip.MustParseAddr(v6)
	a.BackendV6Data = json.RawMessage(fmt.Sprintf(`{"VNI":1,"VtepMAC":%q}`, mac6))
	return a
}

func (e *kubeEnv) testDualStack(t *testing.T) {
	ctx := ctxFor(t)
	e.createNode(t, "dual-a", []string{"10.244.51.0/24", "fd00:10:244:51::/64"}, nil)
	e.createNode(t, "dual-b", []string{"10.244.52.0/24", "fd00:10:244:52::/64"}, nil)
	ma, mb := e.manager(t, "dual-a", dualConf, true), e.manager(t, "dual-b", dualConf, true)
	la, err := ma.AcquireLease(ctx, dualAttrs("192.0.2.51", "2001:db8::51", "0e:00:00:00:51:04", "0e:00:00:00:51:06"))
	if err != nil {
		t.Fatal(err)
	}
	if !la.EnableIPv4 || !la.EnableIPv6 || la.Key() != "10.244.51.0-24&fd00:10:244:51::-64" {
		t.Fatalf("dual-stack lease %+v (key %s)", la, la.Key())
	}
	want := map[string]string{
		"kube-subnet-manager": "true", "backend-type": "vxlan",
		"public-ip": "192.0.2.51", "backend-data": `{"VNI":1,"VtepMAC":"0e:00:00:00:51:04"}`,
		"public-ipv6": "2001:db8::51", "backend-v6-data": `{"VNI":1,"VtepMAC":"0e:00:00:00:51:06"}`,
	}
	if got := ours(t, e.getNode(t, "dual-a")); !maps.Equal(got, want) {
		t.Fatalf("annotations %v, want %v", got, want)
	}
	ch := watchLeases(t, mb)
	snap := <-ch
	if len(snap) != 1 || snap[0].Lease.IPv6Subnet.String() != "fd00:10:244:51::/64" || snap[0].Lease.Attrs.PublicIPv6.String() != "2001:db8::51" {
		t.Fatalf("b's snapshot %+v", snap)
	}
	// Only the IPv4 side changes (upstream drops this update when the IPv6 side is unchanged) ...
	if _, err := ma.AcquireLease(ctx, dualAttrs("192.0.2.151", "2001:db8::51", "0e:00:00:00:51:04", "0e:00:00:00:51:06")); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ch, "b sees a's new IPv4 address", isEvent(subnet.EventAdded, "10.244.51.0/24", func(l subnet.Lease) bool {
		return l.Attrs.PublicIP.String() == "192.0.2.151" && l.Attrs.PublicIPv6.String() == "2001:db8::51"
	}))
	// ... then only the IPv6 side.
	if _, err := ma.AcquireLease(ctx, dualAttrs("192.0.2.151", "2001:db8::151", "0e:00:00:00:51:04", "0e:00:00:00:51:07")); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ch, "b sees a's new IPv6 side", isEvent(subnet.EventAdded, "10.244.51.0/24", func(l subnet.Lease) bool {
		return l.Attrs.PublicIPv6.String() == "2001:db8::151" && strings.Contains(string(l.Attrs.BackendV6Data), "0e:00:00:00:51:07")
	}))
	want["public-ip"], want["public-ipv6"] = "192.0.2.151", "2001:db8::151"
	want["backend-v6-data"] = `{"VNI":1,"VtepMAC":"0e:00:00:00:51:07"}`
	if got := ours(t, e.getNode(t, "dual-a")); !maps.Equal(got, want) {
		t.Fatalf("annotations after the changes %v, want %v", got, want)
	}
}

func (e *kubeEnv) testPodCIDRAssignedLater(t *testing.T) {
	ctx := ctxFor(t)
	e.createNode(t, "late-1", nil, nil)
	m := e.manager(t, "late-1", v4conf, true)
	_, err := m.AcquireLease(ctx, vxlanAttrs("192.0.2.61", "0e:00:00:00:61:01"))
	if err == nil || err.Error() != `node "late-1" pod cidr not assigned` {
		t.Fatalf("err %v, want upstream's `node \"late-1\" pod cidr not assigned`", err)
	}
	e.StartControllerManager(t, testenv.ControllerManagerOptions{ClusterCIDRs: []string{"10.244.0.0/16"}})
	// weftd retries AcquireLease with backoff; do the same until nodeipam has assigned the CIDR.
	for {
		l, err := m.AcquireLease(ctx, vxlanAttrs("192.0.2.61", "0e:00:00:00:61:01"))
		if err == nil {
			if n := e.getNode(t, "late-1"); l.Subnet.String() != n.Spec.PodCIDR || !l.Subnet.IsValid() {
				t.Fatalf("lease %v, node podCIDR %q", l.Subnet, n.Spec.PodCIDR)
			}
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no lease after nodeipam started: %v; controller manager log:\n%s", err, e.ControllerManagerLogTail())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
