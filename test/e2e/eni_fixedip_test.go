package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftnet/weft/cloud/aliyun/sim"
	"github.com/weftnet/weft/internal/eni/checkpoint"
	"github.com/weftnet/weft/internal/lab"
)

// Fixed pod addresses on alisim's fabric (ip_reservation_ttl): a StatefulSet's pod and an annotated pod keep their
// address across deletion and re-creation, and across a weftd crash; an unannotated pod does not; scaling the
// StatefulSet down ends its pods' reservations; a short TTL ends one on its own. No controller runs: the test
// creates the StatefulSet and its pods (with their owner reference) in kube-apiserver and plays kubelet through
// the lab's CNI runtime. Each step asserts on the checkpoint, the cloud's ENIs and the node's routes.

// fixedPod creates the pod object name (owned by the StatefulSet sts when it is given, annotated with ann) on n, a
// fresh sandbox for it and runs CNI ADD.
func (e *eniEnv) fixedPod(n *lab.Node, name string, sts *appsv1.StatefulSet, ann map[string]string) (*eniPod, error) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Annotations: ann},
		Spec: corev1.PodSpec{NodeName: n.Name, Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/pause"}}}}
	if sts != nil {
		yes := true
		pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "StatefulSet", Name: sts.Name, UID: sts.UID,
			Controller: &yes, BlockOwnerDeletion: &yes}}
	}
	if _, err := e.kube.Client.CoreV1().Pods("default").Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	p, err := e.sandbox(n, name)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.pods[name] = p
	e.mu.Unlock()
	return p, e.add(p)
}

// goneFor deletes the pod as a kubelet and the API would (DEL, sandbox gone, the object deleted, then removed
// with grace 0 as the kubelet confirms it) and waits until the pod object is gone, so that its re-creation is a
// new pod of the same name.
func (e *eniEnv) goneFor(t *testing.T, p *eniPod) {
	t.Helper()
	if err := e.delPod(p); err != nil {
		t.Fatalf("DEL %s: %v", p.Name, err)
	}
	zero := int64(0)
	_ = e.kube.Client.CoreV1().Pods("default").Delete(context.Background(), p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	if err := lab.WaitFor(20*time.Second, "pod "+p.Name+" gone from the API", func() (bool, error) {
		_, err := e.kube.Client.CoreV1().Pods("default").Get(context.Background(), p.Name, metav1.GetOptions{})
		return err != nil, nil
	}); err != nil {
		t.Fatal(err)
	}
}

// recordsOf: n's checkpoint records of address ip.
func (e *eniEnv) recordsOf(n *lab.Node, ip string) []checkpoint.Record {
	e.t.Helper()
	var out []checkpoint.Record
	for _, r := range e.checkpointOf(n).Records {
		if r.IP.String() == ip {
			out = append(out, r)
		}
	}
	return out
}

// reservedState checks that ip is kept for pod name and nothing else: one Reserved record of default/name, still
// listed by the cloud on that record's ENI, and no route to it on the host (the pod is gone).
func (e *eniEnv) reservedState(t *testing.T, n *lab.Node, ip, name, sts string) {
	t.Helper()
	rs := e.recordsOf(n, ip)
	if len(rs) != 1 || rs[0].State != checkpoint.Reserved || rs[0].PodNamespace != "default" || rs[0].PodName != name ||
		rs[0].StatefulSet != sts || rs[0].ContainerID != "" || !rs[0].ReservedUntil.After(rs[0].ReleasedAt) {
		t.Fatalf("%s after %s's deletion: records %+v, want one Reserved for default/%s", ip, name, rs, name)
	}
	if got := eniHolding(e.enisOf("i-alisim0001"), ip); got != rs[0].ENI {
		t.Errorf("the reserved %s is on %q in the cloud, the checkpoint says %s", ip, got, rs[0].ENI)
	}
	if dev, ok := hostOf(t, n).routes[netip.MustParseAddr(ip)]; ok {
		t.Errorf("the host still routes the reserved %s (its pod is gone) to %s", ip, dev)
	}
}

// waitRecords waits until cond holds for n's records of ip.
func (e *eniEnv) waitRecords(t *testing.T, n *lab.Node, ip string, timeout time.Duration, what string, cond func([]checkpoint.Record) bool) {
	t.Helper()
	var rs []checkpoint.Record
	if err := lab.WaitFor(timeout, what, func() (bool, error) {
		rs = e.recordsOf(n, ip)
		return cond(rs), nil
	}); err != nil {
		t.Fatalf("%v: records of %s: %+v\n%s", err, ip, rs, tailN(n.Daemon.Logs(), 20))
	}
}

func TestENIFixedIP(t *testing.T) {
	t.Parallel()
	const port = 10480
	e := newENIEnv(t, 1, func(st *sim.State) { st.Instances[0].Type = "ecs.c7.4xlarge" })
	e.keepLogs()
	n := e.nodes[0]
	ttl := "10m"
	inner := e.conf
	e.conf = func(n *lab.Node) string {
		return strings.Replace(inner(n), `"Type":"eni",`, fmt.Sprintf(`"Type":"eni","ip_reservation_ttl":%q,`, ttl), 1)
	}
	e.startENI(n, port)
	e.waitReady(n, 90*time.Second)
	sts := e.createStatefulSet(t, "web", 2)

	// A StatefulSet's pod: DEL and the pod deleted, its address is kept for it; the pod made again gets it back.
	web0, err := e.fixedPod(n, "web-0", sts, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := web0.IP
	if rs := e.recordsOf(n, a); len(rs) != 1 || rs[0].State != checkpoint.Assigned || !rs[0].Reserve || rs[0].StatefulSet != "web" {
		t.Fatalf("web-0's record: %+v, want Assigned with Reserve for StatefulSet web", rs)
	}
	e.goneFor(t, web0)
	e.reservedState(t, n, a, "web-0", "web")
	others := map[string]string{} // addresses other pods got meanwhile
	other, err := e.fixedPod(n, "other-0", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	others[other.IP] = other.Name
	if web0, err = e.fixedPod(n, "web-0", sts, nil); err != nil {
		t.Fatal(err)
	}
	if web0.IP != a {
		t.Fatalf("web-0 made again got %s, want its address %s", web0.IP, a)
	}
	if err := lab.WaitFor(10*time.Second, "web-0 -> other-0", func() (bool, error) { return web0.ping(other.IP) == nil, nil }); err != nil {
		t.Errorf("web-0 on its kept address %s: %v", a, err)
	}

	// Across a weftd crash: the reservation is in the checkpoint, reconcile keeps it (no veth, the pod gone).
	e.goneFor(t, web0)
	n.Daemon.Kill()
	e.startENI(n, port)
	e.waitReady(n, 60*time.Second)
	e.reservedState(t, n, a, "web-0", "web")
	if web0, err = e.fixedPod(n, "web-0", sts, nil); err != nil {
		t.Fatal(err)
	}
	if web0.IP != a {
		t.Fatalf("web-0 made again after weftd's restart got %s, want its address %s", web0.IP, a)
	}

	// An annotated plain pod keeps its address too; an unannotated one does not (its address cools down).
	keep, err := e.fixedPod(n, "keep", nil, map[string]string{"k8s.aliyun.com/pod-ip-reservation": "true"})
	if err != nil {
		t.Fatal(err)
	}
	b := keep.IP
	e.goneFor(t, keep)
	e.reservedState(t, n, b, "keep", "")
	if keep, err = e.fixedPod(n, "keep", nil, map[string]string{"k8s.aliyun.com/pod-ip-reservation": "true"}); err != nil {
		t.Fatal(err)
	}
	if keep.IP != b {
		t.Fatalf("the annotated pod made again got %s, want %s", keep.IP, b)
	}
	plain, err := e.fixedPod(n, "plain", nil, map[string]string{"k8s.aliyun.com/pod-ip-reservation": "false"})
	if err != nil {
		t.Fatal(err)
	}
	c := plain.IP
	e.goneFor(t, plain)
	if rs := e.recordsOf(n, c); len(rs) != 1 || rs[0].State != checkpoint.Cooldown {
		t.Fatalf("an unannotated pod's address after its deletion: %+v, want Cooldown", rs)
	}

	// Scaled down below web-1's ordinal, then to 0: the reservations end within the check's period (10 s).
	web1, err := e.fixedPod(n, "web-1", sts, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := web1.IP
	e.goneFor(t, web1)
	e.reservedState(t, n, d, "web-1", "web")
	e.scale(t, "web", 1)
	e.waitRecords(t, n, d, 40*time.Second, "web-1's reservation ends at replicas 1", func(rs []checkpoint.Record) bool {
		return len(rs) == 0 || len(rs) == 1 && rs[0].State == checkpoint.Cooldown
	})
	if rs := e.recordsOf(n, a); len(rs) != 1 || rs[0].State != checkpoint.Assigned || rs[0].ContainerID != web0.ContainerID {
		t.Fatalf("web-0, within the replicas, lost its address: %+v", rs)
	}
	e.goneFor(t, web0)
	e.reservedState(t, n, a, "web-0", "web")
	e.scale(t, "web", 0)
	e.waitRecords(t, n, a, 40*time.Second, "web-0's reservation ends at replicas 0", func(rs []checkpoint.Record) bool {
		return len(rs) == 0 || len(rs) == 1 && rs[0].State == checkpoint.Cooldown
	})

	// A short TTL: weftd restarted with 20 s, the annotated pod deleted again; its reservation ends on its own,
	// then its cooldown: the address is idle (no record, still on its ENI), for any pod.
	ttl = "20s"
	if err := n.Daemon.Stop(); err != nil {
		t.Logf("weftd's exit on SIGTERM: %v", err)
	}
	e.startENI(n, port)
	e.waitReady(n, 60*time.Second)
	e.goneFor(t, keep)
	e.reservedState(t, n, b, "keep", "")
	if rs := e.recordsOf(n, b); rs[0].ReservedUntil.Sub(rs[0].ReleasedAt) != 20*time.Second {
		t.Errorf("reserved for %s, want the configured 20s", rs[0].ReservedUntil.Sub(rs[0].ReleasedAt))
	}
	e.waitRecords(t, n, b, 90*time.Second, "the reservation of keep ends with its TTL and its address is idle", func(rs []checkpoint.Record) bool {
		return len(rs) == 0
	})
	if got := eniHolding(e.enisOf("i-alisim0001"), b); got == "" {
		t.Errorf("the idle %s is on no ENI of the node", b)
	}
	for ip, name := range others {
		if ip == a {
			t.Errorf("%s got %s while it was reserved for web-0", name, ip)
		}
	}
	live := []*eniPod{other}
	e.agreeSoon(t, n, "i-alisim0001", live)
}

// createStatefulSet creates the StatefulSet name with replicas (no controller acts on it).
func (e *eniEnv) createStatefulSet(t *testing.T, name string, replicas int32) *appsv1.StatefulSet {
	t.Helper()
	labels := map[string]string{"app": name}
	s := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}, Spec: appsv1.StatefulSetSpec{
		Replicas: &replicas, ServiceName: name, Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/pause"}}}}}}
	out, err := e.kube.Client.AppsV1().StatefulSets("default").Create(context.Background(), s, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *eniEnv) scale(t *testing.T, name string, replicas int32) {
	t.Helper()
	ctx := context.Background()
	s, err := e.kube.Client.AppsV1().StatefulSets("default").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Spec.Replicas = &replicas
	if _, err := e.kube.Client.AppsV1().StatefulSets("default").Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}
