package eni

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/weftnet/weft/internal/eni/checkpoint"
	"github.com/weftnet/weft/internal/eni/datapath"
	"github.com/weftnet/weft/internal/eni/pool"
	"github.com/weftnet/weft/internal/testenv"
)

func stsOwner(name string, controller bool) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: name, UID: types.UID("u-" + name), Controller: &controller}
}

func TestPodReservation(t *testing.T) {
	pod := func(owners []metav1.OwnerReference, ann map[string]string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-0", OwnerReferences: owners, Annotations: ann}}
	}
	rs := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs"}
	notApps := stsOwner("web", true)
	notApps.APIVersion = "example.com/v1"
	for _, c := range []struct {
		name    string
		pod     *corev1.Pod
		reserve bool
		sts     string
	}{
		{"plain", pod(nil, nil), false, ""},
		{"a StatefulSet's", pod([]metav1.OwnerReference{rs, stsOwner("web", true)}, nil), true, "web"},
		{"a StatefulSet's, annotated false", pod([]metav1.OwnerReference{stsOwner("web", true)}, map[string]string{AnnotationPodIPReservation: "false"}), true, "web"},
		{"a hostile owner name", pod([]metav1.OwnerReference{stsOwner("Web/../x", true)}, nil), false, ""},
		{"a hostile owner name, annotated", pod([]metav1.OwnerReference{stsOwner("Web/../x", true)}, map[string]string{AnnotationPodIPReservation: "true"}), true, ""},
		{"owned but not controlled", pod([]metav1.OwnerReference{stsOwner("web", false)}, nil), false, ""},
		{"another group's StatefulSet", pod([]metav1.OwnerReference{notApps}, nil), false, ""},
		{"a ReplicaSet's", pod([]metav1.OwnerReference{rs}, nil), false, ""},
		{"annotated true", pod(nil, map[string]string{AnnotationPodIPReservation: "true"}), true, ""},
		{"annotated True", pod(nil, map[string]string{AnnotationPodIPReservation: "True"}), false, ""},
		{"annotated yes", pod(nil, map[string]string{AnnotationPodIPReservation: "yes"}), false, ""},
		{"annotated empty", pod(nil, map[string]string{AnnotationPodIPReservation: ""}), false, ""},
		{"nil", nil, false, ""},
	} {
		if r, s := podReservation(c.pod); r != c.reserve || s != c.sts {
			t.Errorf("%s: %v %q, want %v %q", c.name, r, s, c.reserve, c.sts)
		}
	}
	// The informer's trimmed pod keeps what the decision reads, and nothing else of owners and annotations.
	p := pod([]metav1.OwnerReference{rs, stsOwner("web", true)}, map[string]string{AnnotationPodIPReservation: "true", "big": "x"})
	got, _ := TrimPod(p)
	tp := got.(*corev1.Pod)
	if len(tp.OwnerReferences) != 1 || tp.OwnerReferences[0].Kind != "StatefulSet" || len(tp.Annotations) != 1 {
		t.Fatalf("trimmed to owners %+v annotations %v", tp.OwnerReferences, tp.Annotations)
	}
	if info := podInfo(tp); !info.Reserve || info.StatefulSet != "web" {
		t.Fatalf("trimmed pod's info %+v", info)
	}
}

func TestReservationEnds(t *testing.T) {
	st := func(replicas, start int32) StatefulSetState {
		return StatefulSetState{Exists: true, Replicas: replicas, Start: start}
	}
	for _, c := range []struct {
		pod, sts string
		st       StatefulSetState
		end      bool
	}{
		{"web-0", "web", st(1, 0), false},
		{"web-1", "web", st(1, 0), true},
		{"web-1", "web", st(2, 0), false},
		{"web-0", "web", st(0, 0), true},
		{"web-0", "web", StatefulSetState{}, true},
		{"web-3", "web", st(2, 2), false}, // ordinals 2, 3
		{"web-1", "web", st(2, 2), true},
		{"web-4", "web", st(2, 2), true},
		{"db-0", "web", st(0, 0), false},                    // not the StatefulSet's name: only the TTL
		{"web-x", "web", st(0, 0), false},                   // no ordinal
		{"web-", "web", st(0, 0), false},                    // no ordinal
		{"web-+1", "web", st(0, 0), false},                  // not an ordinal
		{"web-99999999999", "web", st(0, 0), false},         // out of range: not an ordinal
		{"web-a-0", "web-a", st(0, 0), true},                // a dashed StatefulSet name
		{"web-2147483647", "web", st(2147483647, 1), false}, // no overflow
	} {
		if end, why := reservationEnds(c.pod, c.sts, c.st); end != c.end || end && why == "" {
			t.Errorf("%s of %s %+v: ends %v (%q), want %v", c.pod, c.sts, c.st, end, why, c.end)
		}
	}
}

// The check ends a reservation when its StatefulSet is scaled below the pod's ordinal or deleted, and keeps it
// otherwise (also when the read fails), through KubeStatefulSets on a fake clientset and a real pool.
func TestCheckReservations(t *testing.T) {
	ctx := context.Background()
	two := int32(2)
	kc := fake.NewClientset(&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}, Spec: appsv1.StatefulSetSpec{Replicas: &two}})
	clk := newKubeTestClock()
	p, err := pool.New(pool.Config{MinIdle: 1, TargetIdle: 2, MaxIdle: 4, Cooldown: time.Minute, IdleReclaimAfter: time.Hour, ReclaimBatch: 1,
		Limits: pool.Limits{InstanceType: "t", ENIs: 1, AddrsPerENI: 4}, Instance: "i-1", ReserveTTL: time.Hour},
		clk, checkpoint.Store{Path: filepath.Join(t.TempDir(), "cp.json")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := pool.ENI{ID: "eni-1", Usable: true}
	for _, a := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"} {
		e.Addrs = append(e.Addrs, mustAddr(a))
	}
	p.SetENIs([]pool.ENI{e})
	for _, name := range []string{"web-0", "web-1", "solo"} {
		pd := pool.Pod{ContainerID: "c-" + name, IfName: "eth0", Namespace: "default", Name: name, Reserve: true, StatefulSet: "web"}
		if name == "solo" {
			pd.StatefulSet = ""
		}
		if _, err := p.Allocate(pd); err != nil {
			t.Fatal(err)
		}
		if _, _, err := p.Release(pd.ContainerID, "eth0"); err != nil {
			t.Fatal(err)
		}
	}
	n := &Network{pool: p, cfg: Config{IPReservationTTL: time.Hour}, d: agentDeps{sts: KubeStatefulSets{Client: kc}, clock: clk}}
	reserved := func() map[string]bool {
		out := map[string]bool{}
		for _, r := range p.Records() {
			if r.State == checkpoint.Reserved {
				out[r.PodName] = true
			}
		}
		return out
	}
	n.checkReservations(ctx)
	if got := reserved(); len(got) != 3 {
		t.Fatalf("with 2 replicas: %v reserved, want all 3", got)
	}
	one := int32(1)
	s, _ := kc.AppsV1().StatefulSets("default").Get(ctx, "web", metav1.GetOptions{})
	s.Spec.Replicas = &one
	if _, err := kc.AppsV1().StatefulSets("default").Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	n.checkReservations(ctx)
	if got := reserved(); len(got) != 2 || got["web-1"] {
		t.Fatalf("scaled to 1: %v reserved, want web-0 and solo", got)
	}
	broken := fake.NewClientset()
	broken.PrependReactor("get", "statefulsets", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("apiserver down")
	})
	(&Network{pool: p, cfg: n.cfg, d: agentDeps{sts: KubeStatefulSets{Client: broken}, clock: clk}}).checkReservations(ctx)
	if got := reserved(); len(got) != 2 {
		t.Fatalf("a failed read ended reservations: %v left", got)
	}
	if err := kc.AppsV1().StatefulSets("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	n.checkReservations(ctx)
	if got := reserved(); len(got) != 1 || !got["solo"] {
		t.Fatalf("StatefulSet deleted: %v reserved, want only the annotated pod's", got)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// testStatefulSets is KubeStatefulSets' contract against a real API server, under the DaemonSet's rules: a
// StatefulSet's replicas and first ordinal, one that does not exist, and replicas left to the API's default.
func (e *eniKubeEnv) testStatefulSets(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	three := int32(3)
	mk := func(name string, replicas *int32, ord *appsv1.StatefulSetOrdinals) {
		t.Helper()
		s := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}, Spec: appsv1.StatefulSetSpec{
			Replicas: replicas, Ordinals: ord, ServiceName: name,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/pause"}}}}}}
		if _, err := e.Client.AppsV1().StatefulSets("default").Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mk("sts-three", &three, &appsv1.StatefulSetOrdinals{Start: 5})
	mk("sts-default", nil, nil)
	k := KubeStatefulSets{Client: e.sa}
	for _, c := range []struct {
		name string
		want StatefulSetState
	}{
		{"sts-three", StatefulSetState{Exists: true, Replicas: 3, Start: 5}},
		{"sts-default", StatefulSetState{Exists: true, Replicas: 1}},
		{"sts-absent", StatefulSetState{}},
	} {
		got, err := k.Get(ctx, "default", c.name)
		if err != nil || got != c.want {
			t.Errorf("%s: %+v %v, want %+v", c.name, got, err, c.want)
		}
	}
	// A read the API refuses is an error, never "gone" (which would end a reservation).
	if _, err := k.Get(ctx, "default", "Bad/Name"); err == nil {
		t.Error("a malformed name read without an error")
	}
}

// The address GC, finding a gone pod's address with no datapath, releases it: a plain pod's into the cooldown, a
// reserving pod's into its reservation, which the GC then leaves alone (no pod to be an orphan of) until the
// reservation ends with its TTL. The host is a fresh network namespace read by datapath.Host; pods and nodes come
// from the backend's informers on a fake clientset.
func TestGCKeepsReservations(t *testing.T) {
	_, h := testenv.NewNetns(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kc := fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: testNode}})
	pods, nodes := NewPods(kc, testNode), NewNodes(kc)
	pods.Start(ctx)
	nodes.Start(ctx)
	if pods.WaitForSync(ctx) != nil || nodes.WaitForSync(ctx) != nil {
		t.Fatal("informers not synced")
	}
	clk := newKubeTestClock()
	p, err := pool.New(pool.Config{MinIdle: 1, TargetIdle: 2, MaxIdle: 4, Cooldown: time.Minute, IdleReclaimAfter: time.Hour, ReclaimBatch: 1,
		Limits: pool.Limits{InstanceType: "t", ENIs: 1, AddrsPerENI: 4}, Instance: "i-1", ReserveTTL: 5 * time.Minute},
		clk, checkpoint.Store{Path: filepath.Join(t.TempDir(), "cp.json")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := pool.ENI{ID: "eni-1", Usable: true, Addrs: []netip.Addr{mustAddr("10.0.0.1"), mustAddr("10.0.0.2"), mustAddr("10.0.0.3")}}
	p.SetENIs([]pool.ENI{e})
	web, err := p.Allocate(pool.Pod{ContainerID: "c-web", IfName: "eth0", Namespace: "default", Name: "web-0", Reserve: true, StatefulSet: "web"})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := p.Allocate(pool.Pod{ContainerID: "c-plain", IfName: "eth0", Namespace: "default", Name: "plain"})
	if err != nil {
		t.Fatal(err)
	}
	n := &Network{pool: p, cfg: Config{IPReservationTTL: 5 * time.Minute},
		d: agentDeps{pods: pods, nodes: nodes, host: datapath.Host{H: h}, clock: clk, m: newMetrics(nil)}}
	stateOf := func(ip netip.Addr) checkpoint.State {
		for _, r := range p.Records() {
			if r.IP == ip {
				return r.State
			}
		}
		return "idle"
	}
	clk.Add(2 * time.Minute) // older than gcMinAge: no ADD in flight
	n.collectOrphans()
	if s := stateOf(web.IP); s != checkpoint.Reserved {
		t.Fatalf("the reserving pod's address after GC: %s, want Reserved", s)
	}
	if s := stateOf(plain.IP); s != checkpoint.Cooldown {
		t.Fatalf("the plain pod's address after GC: %s, want Cooldown", s)
	}
	clk.Add(4 * time.Minute) // within the reservation, past the plain pod's cooldown
	n.collectOrphans()
	if s := stateOf(web.IP); s != checkpoint.Reserved {
		t.Fatalf("a second GC: %s, want Reserved", s)
	}
	if s := stateOf(plain.IP); s != "idle" {
		t.Fatalf("the plain pod's address after its cooldown: %s, want idle", s)
	}
	clk.Add(time.Minute + time.Second) // the reservation is over (and the cooldown from the release with it)
	if s := stateOf(web.IP); s != "idle" {
		t.Fatalf("the reserving pod's address after its TTL: %s, want idle", s)
	}
}
