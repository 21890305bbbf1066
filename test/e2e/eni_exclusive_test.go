package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/internal/lab"
)

// TestENIExclusive: a node labelled weft.io/eni-mode=exclusive (the net-conf says shared) on a type of 3 ENIs
// gives each pod a whole ENI as eth0 with its primary address: 2 pods, as weft plan's eni-exclusive figure says,
// and the third gets the limit. An outside instance reaches a pod's address (through its ENI), the pod reaches
// its node and a Service ClusterIP (DNAT on the node, as kube-proxy's) through its second veth; DEL returns the
// ENI to the node (also when the pod's namespace went first), and a new pod gets it.
func TestENIExclusive(t *testing.T) {
	t.Parallel()
	const port = 10470
	e := newENIEnv(t, 1, nil) // i-alisim0001 (192.168.0.10, ecs.e2e.eni3); i-alisim0002 outside, 192.168.1.11
	e.keepLogs()
	n := e.nodes[0]
	conf := e.conf
	e.conf = func(n *lab.Node) string {
		return strings.Replace(conf(n), `"Type":"eni",`, `"Type":"eni","Mode":"shared","service_cidr":"10.96.0.0/12",`, 1)
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

	// onHost says whether a link with the MAC is in the node's namespace.
	onHost := func(mac string) bool {
		out, err := lab.NSRun(n.Name, "ip", "-o", "link")
		return err == nil && strings.Contains(out, strings.ToLower(mac))
	}
	// eniOf is the node's ENI whose primary is ip.
	eniOf := func(ip string) aliyun.ENI {
		t.Helper()
		for _, x := range e.enisOf("i-alisim0001") {
			if x.PrimaryIP.String() == ip {
				return x
			}
		}
		t.Fatalf("no ENI of the node has the primary address %s", ip)
		return aliyun.ENI{}
	}
	// exclusive asserts the pod holds a whole ENI as eth0.
	exclusive := func(p *eniPod) aliyun.ENI {
		t.Helper()
		x := eniOf(p.IP)
		if len(x.Secondary) != 0 {
			t.Errorf("pod %s's ENI %s has secondary addresses %v: not created whole", p.Name, x.ID, x.Secondary)
		}
		link, err := lab.NSRun(p.ns, "ip", "-o", "link", "show", "eth0")
		if err != nil || !strings.Contains(link, strings.ToLower(x.MAC)) {
			t.Fatalf("pod %s's eth0: %q %v, want the ENI %s's MAC %s", p.Name, link, err, x.ID, x.MAC)
		}
		addr, _ := lab.NSRun(p.ns, "ip", "-o", "-4", "addr", "show", "eth0")
		route, _ := lab.NSRun(p.ns, "ip", "route", "show", "default")
		if !strings.Contains(addr, p.IP+"/32") || !strings.Contains(route, "via 192.168.0.253 dev eth0") {
			t.Fatalf("pod %s: eth0 %q, default route %q; want %s/32 and the default via the vSwitch gateway", p.Name, addr, route, p.IP)
		}
		if onHost(x.MAC) {
			t.Fatalf("the ENI %s of pod %s is still in the node's namespace", x.ID, p.Name)
		}
		return x
	}
	var pods []*eniPod
	for i := 0; i < 2; i++ {
		p, err := e.addPod(n, fmt.Sprintf("x%d", i))
		if err != nil {
			t.Fatalf("pod %d: %v\n%s", i, err, tailN(n.Daemon.Logs(), 30))
		}
		exclusive(p)
		pods = append(pods, p)
	}
	if pods[0].IP == pods[1].IP || eniOf(pods[0].IP).ID == eniOf(pods[1].IP).ID {
		t.Fatalf("two pods on one ENI: %s, %s", pods[0].IP, pods[1].IP)
	}

	t.Run("the node advertises exclusive mode and 2 ENIs", func(t *testing.T) {
		if err := lab.WaitFor(10*time.Second, "node status", func() (bool, error) {
			nd, err := e.kube.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			q := nd.Status.Capacity["aliyun/eni"]
			return nd.Annotations["weft.io/eni-mode"] == "exclusive" && nd.Annotations["k8s.aliyun.com/max-available-ip"] == "2" &&
				q.String() == "2", nil
		}); err != nil {
			nd, _ := e.kube.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			t.Fatalf("%v: annotations %v, capacity %v", err, nd.Annotations, nd.Status.Capacity)
		}
	})
	t.Run("a third pod gets the limit of 2, weft plan's eni-exclusive figure", func(t *testing.T) {
		_, err := e.addPod(n, "x2")
		if err == nil || !strings.Contains(err.Error(), "exclusive ENI limit") || !strings.Contains(err.Error(), "holds 2 pods") {
			t.Fatalf("ADD beyond the limit: %v, want the exclusive limit of 2", err)
		}
		e.dropSandbox(e.pods["x2"])
		checkPlanPods(t, n, "eni-exclusive", 2)
	})
	t.Run("an outside instance reaches the pod's address, and sees it", func(t *testing.T) {
		if got := sourceSeenBy(t, pods[0].ns, pods[0].IP, 7301, e.outside); got != "192.168.1.11" {
			t.Fatalf("the pod saw the outside instance as %s, want 192.168.1.11", got)
		}
		if got := sourceSeenBy(t, e.outside, "192.168.1.11", 7302, pods[1].ns); got != pods[1].IP {
			t.Fatalf("the outside instance saw %s, want the pod address %s", got, pods[1].IP)
		}
	})
	t.Run("the pod reaches its node through its second veth", func(t *testing.T) {
		if got := sourceSeenBy(t, n.Name, "192.168.0.10", 7303, pods[0].ns); got != pods[0].IP {
			t.Fatalf("the node saw %s, want the pod address %s", got, pods[0].IP)
		}
		if route, _ := lab.NSRun(pods[0].ns, "ip", "route", "get", "192.168.0.10"); !strings.Contains(route, "dev veth1") {
			t.Fatalf("pod -> node goes %q, want through veth1", route)
		}
	})
	t.Run("a Service's DNAT on the node (as kube-proxy's) answers the pod", func(t *testing.T) {
		checkServiceDNAT(t, n.Name, "e2e-kpx", n.Name, "192.168.0.10:7304", "192.168.0.10:7304", pods[1].ns)
	})
	t.Run("CHECK passes for both pods", func(t *testing.T) {
		for _, p := range pods {
			if err := e.rts[n.Name].Check(ctx, p.Sandbox); err != nil {
				t.Errorf("CHECK %s: %v", p.Name, err)
			}
		}
	})
	t.Run("weftd restarted with the pods alive adopts their ENIs", func(t *testing.T) {
		before := map[string]bool{}
		for _, x := range e.enisOf("i-alisim0001") {
			before[x.ID] = true
		}
		if err := n.Daemon.Stop(); err != nil {
			t.Logf("weftd's exit on SIGTERM: %v", err)
		}
		e.startENI(n, port)
		e.waitReady(n, 60*time.Second)
		for _, p := range pods {
			if err := e.rts[n.Name].Check(ctx, p.Sandbox); err != nil {
				t.Errorf("CHECK %s after the restart: %v", p.Name, err)
			}
			exclusive(p)
		}
		if got := sourceSeenBy(t, pods[0].ns, pods[0].IP, 7306, e.outside); got != "192.168.1.11" {
			t.Errorf("outside -> pod after the restart: seen from %s", got)
		}
		time.Sleep(6 * time.Second) // a host loop and a settle round
		for _, x := range e.enisOf("i-alisim0001") {
			if !before[x.ID] {
				t.Errorf("the restart made a new ENI %s", x.ID)
			}
		}
		if logs := n.Daemon.Logs(); strings.Contains(logs, "lost its network") || strings.Contains(logs, "quarantine") {
			t.Errorf("after the restart weftd reports pods lost or addresses quarantined:\n%s", tailN(logs, 30))
		}
	})
	newPod := func(name string) *eniPod { t.Helper(); return e.addPodRetrying(t, n, name) }
	t.Run("DEL returns the ENI to the node, and a new pod gets it", func(t *testing.T) {
		x := eniOf(pods[0].IP)
		if err := e.delPod(pods[0]); err != nil {
			t.Fatalf("DEL: %v", err)
		}
		if !onHost(x.MAC) {
			t.Fatalf("after DEL the ENI %s (%s) is not in the node's namespace", x.ID, x.MAC)
		}
		p := newPod("x3")
		if got := exclusive(p); got.ID != x.ID {
			t.Fatalf("the new pod got %s, want the freed %s", got.ID, x.ID)
		}
		pods[0] = p
	})
	t.Run("DEL after the pod's namespace went: the ENI comes back to the node", func(t *testing.T) {
		x := eniOf(pods[1].IP)
		e.dropSandbox(pods[1])
		if err := e.delPod(pods[1]); err != nil {
			t.Fatalf("DEL without the namespace: %v", err)
		}
		if err := lab.WaitFor(30*time.Second, "the ENI back on the node", func() (bool, error) { return onHost(x.MAC), nil }); err != nil {
			t.Fatal(err)
		}
		p := newPod("x4")
		if got := exclusive(p); got.ID != x.ID {
			t.Fatalf("the new pod got %s, want the freed %s", got.ID, x.ID)
		}
		if got := sourceSeenBy(t, p.ns, p.IP, 7305, e.outside); got != "192.168.1.11" {
			t.Fatalf("outside -> the new pod: seen from %s", got)
		}
		pods[1] = p
	})
	t.Run("a fixed-address pod keeps its whole ENI across deletion and re-creation", func(t *testing.T) {
		x := eniOf(pods[1].IP)
		if err := e.delPod(pods[1]); err != nil {
			t.Fatal(err)
		}
		annotated := func(name string) {
			t.Helper()
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default",
				Annotations: map[string]string{"k8s.aliyun.com/pod-ip-reservation": "true"}},
				Spec: corev1.PodSpec{NodeName: n.Name, Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/pause"}}}}
			if _, err := e.kube.Client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		add := func(name string) (*eniPod, error) {
			p, err := e.sandbox(n, name)
			if err != nil {
				t.Fatal(err)
			}
			if err := e.add(p); err != nil {
				e.dropSandbox(p)
				return nil, err
			}
			e.mu.Lock()
			e.pods[name] = p
			e.mu.Unlock()
			return p, nil
		}
		annotated("xr")
		var p *eniPod
		if err := lab.WaitFor(120*time.Second, "pod xr", func() (bool, error) {
			var err error
			p, err = add("xr")
			return err == nil, nil
		}); err != nil {
			t.Fatal(err)
		}
		if got := exclusive(p); got.ID != x.ID {
			t.Fatalf("xr got %s, want the freed %s", got.ID, x.ID)
		}
		if err := e.delPod(p); err != nil {
			t.Fatal(err)
		}
		if err := e.createPod(n, "xo"); err != nil {
			t.Fatal(err)
		}
		if _, err := add("xo"); err == nil {
			t.Fatalf("another pod got the ENI reserved for xr")
		}
		zero := int64(0)
		_ = e.kube.Client.CoreV1().Pods("default").Delete(ctx, "xr", metav1.DeleteOptions{GracePeriodSeconds: &zero})
		if err := lab.WaitFor(30*time.Second, "xr gone from the API", func() (bool, error) {
			_, err := e.kube.Client.CoreV1().Pods("default").Get(ctx, "xr", metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		}); err != nil {
			t.Fatal(err)
		}
		annotated("xr")
		p, err := add("xr")
		if err != nil {
			t.Fatalf("xr re-created: %v", err)
		}
		if got := exclusive(p); got.ID != x.ID {
			t.Fatalf("xr re-created got %s, want its own %s", got.ID, x.ID)
		}
	})
}
