package eni

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/weftnet/weft/internal/testenv"
)

// kubeTestClock is a settable clock for the tests.
type kubeTestClock struct {
	mu sync.Mutex
	t  time.Time
}

func newKubeTestClock() *kubeTestClock {
	return &kubeTestClock{t: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
}
func (c *kubeTestClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}
func (c *kubeTestClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func kubeTestNode(name string, ann map[string]string, conds ...corev1.NodeCondition) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: ann}, Status: corev1.NodeStatus{Conditions: conds}}
}

// statusPatches are the patches sent to nodes/status since the last call, as decoded JSON.
func statusPatches(t *testing.T, c *fake.Clientset) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, a := range c.Actions() {
		switch a := a.(type) {
		case k8stesting.PatchAction:
			if a.GetSubresource() != "status" || a.GetPatchType() != types.StrategicMergePatchType {
				t.Errorf("patch %s/%s of type %s, want a strategic merge patch of nodes/status", a.GetResource().Resource, a.GetSubresource(), a.GetPatchType())
			}
			var m map[string]any
			if err := json.Unmarshal(a.GetPatch(), &m); err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
		case k8stesting.GetAction:
		default:
			t.Errorf("unexpected %s %s", a.GetVerb(), a.GetResource().Resource)
		}
	}
	c.ClearActions()
	return out
}

func nodeGets(c *fake.Clientset) int {
	n := 0
	for _, a := range c.Actions() {
		if a.GetVerb() == "get" {
			n++
		}
	}
	return n
}

func patchedNodeCondition(t *testing.T, w map[string]any) map[string]any {
	t.Helper()
	conds, _ := w["status"].(map[string]any)["conditions"].([]any)
	if len(w) != 1 || len(conds) != 1 {
		t.Fatalf("patch %v, want one condition under status only", w)
	}
	return conds[0].(map[string]any)
}

func fakeNodeCondition(t *testing.T, c *fake.Clientset, name string) corev1.NodeCondition {
	t.Helper()
	n, err := c.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var found []corev1.NodeCondition
	for _, cd := range n.Status.Conditions {
		if cd.Type == corev1.NodeNetworkUnavailable {
			found = append(found, cd)
		}
	}
	if len(found) != 1 {
		t.Fatalf("node %s has NetworkUnavailable conditions %+v, want exactly one", name, found)
	}
	return found[0]
}

func TestNodeStatusCondition(t *testing.T) {
	ctx := context.Background()
	clk := newKubeTestClock()
	other := corev1.NodeCondition{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory"}
	c := fake.NewClientset(kubeTestNode("n1", nil, other))
	s := NewNodeStatus(c, "n1")
	s.Now = clk.Now

	if err := s.SetNetworkReady(ctx, false, "NoVSwitchAddress", "vSwitch vsw-1 has no free address"); err != nil {
		t.Fatal(err)
	}
	w := statusPatches(t, c)
	if len(w) != 1 {
		t.Fatalf("patches %v, want one patch", w)
	}
	t0 := clk.Now().Format(time.RFC3339)
	if got, want := patchedNodeCondition(t, w[0]), map[string]any{"type": "NetworkUnavailable", "status": "True", "reason": "NoVSwitchAddress",
		"message": "weft: vSwitch vsw-1 has no free address", "lastHeartbeatTime": t0, "lastTransitionTime": t0}; !maps.Equal(got, want) {
		t.Fatalf("patched condition %v, want %v", got, want)
	}
	if cd := fakeNodeCondition(t, c, "n1"); cd.Status != corev1.ConditionTrue || cd.Reason != "NoVSwitchAddress" {
		t.Fatalf("node condition %+v", cd)
	}
	c.ClearActions()

	// The same state again: nothing written, nothing read (the patch's answer is remembered).
	for range 100 {
		clk.Add(time.Second)
		if err := s.SetNetworkReady(ctx, false, "NoVSwitchAddress", "vSwitch vsw-1 has no free address"); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(c.Actions()); n != 0 {
		t.Fatalf("%d API calls for an unchanged state", n)
	}

	// Only the message changes: patched, the transition time kept.
	clk.Add(time.Minute)
	if err := s.SetNetworkReady(ctx, false, "NoVSwitchAddress", "vSwitch vsw-1 and vsw-2 have no free address"); err != nil {
		t.Fatal(err)
	}
	w = statusPatches(t, c)
	if len(w) != 1 {
		t.Fatalf("patches %v", w)
	}
	if _, ok := patchedNodeCondition(t, w[0])["lastTransitionTime"]; ok {
		t.Errorf("a new message is no transition: %v", w[0])
	}
	if cd := fakeNodeCondition(t, c, "n1"); cd.LastTransitionTime.UTC().Format(time.RFC3339) != t0 || !strings.Contains(cd.Message, "vsw-2") {
		t.Errorf("after a new message: %+v, want the transition time %s kept", cd, t0)
	}
	c.ClearActions()

	// Ready: False / WeftENIReady, a transition.
	clk.Add(time.Minute)
	if err := s.SetNetworkReady(ctx, true, "", ""); err != nil {
		t.Fatal(err)
	}
	w = statusPatches(t, c)
	if len(w) != 1 {
		t.Fatalf("patches %v", w)
	}
	got := patchedNodeCondition(t, w[0])
	if got["status"] != "False" || got["reason"] != ReasonReady || got["lastTransitionTime"] != clk.Now().Format(time.RFC3339) ||
		!strings.HasPrefix(got["message"].(string), "weft: ") {
		t.Fatalf("ready patch %v", got)
	}
	n, _ := c.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	if len(n.Status.Conditions) != 2 {
		t.Fatalf("conditions %+v, want the kubelet's kept beside weft's", n.Status.Conditions)
	}
	c.ClearActions()

	// Someone else overwrites the condition: repaired at the next resync, not before.
	n.Status.Conditions = []corev1.NodeCondition{other, {Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionTrue, Reason: "NoRouteCreated"}}
	if _, err := c.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.ClearActions()
	clk.Add(9 * time.Minute)
	if err := s.SetNetworkReady(ctx, true, "", ""); err != nil || len(c.Actions()) != 0 {
		t.Fatalf("before the resync: %v, %v", err, c.Actions())
	}
	clk.Add(2 * time.Minute)
	if err := s.SetNetworkReady(ctx, true, "", ""); err != nil {
		t.Fatal(err)
	}
	if g := nodeGets(c); g != 1 {
		t.Fatalf("%d reads at the resync, want 1", g)
	}
	if w := statusPatches(t, c); len(w) != 1 {
		t.Fatalf("patches %v, want the repair", w)
	}
	if cd := fakeNodeCondition(t, c, "n1"); cd.Status != corev1.ConditionFalse || cd.Reason != ReasonReady {
		t.Fatalf("after the repair: %+v", cd)
	}
}

// A new KubeNodeStatus (weftd restarted) reads the node first and writes nothing when it already says so.
func TestNodeStatusAfterRestart(t *testing.T) {
	ctx := context.Background()
	c := fake.NewClientset(kubeTestNode("n1", map[string]string{AnnotationMaxAvailableIP: "12", AnnotationMaxPods: "12"}))
	first := NewNodeStatus(c, "n1")
	if err := first.SetNetworkReady(ctx, true, "", ""); err != nil {
		t.Fatal(err)
	}
	c.ClearActions()
	again := NewNodeStatus(c, "n1")
	if err := again.SetNetworkReady(ctx, true, "", ""); err != nil {
		t.Fatal(err)
	}
	if err := again.SetCapacity(ctx, 12); err != nil {
		t.Fatal(err)
	}
	if w := statusPatches(t, c); len(w) != 0 {
		t.Fatalf("patches %v after a restart in the same state", w)
	}
	// Not ready with no reason: ReasonNotReady.
	if err := again.SetNetworkReady(ctx, false, "", ""); err != nil {
		t.Fatal(err)
	}
	if cd := fakeNodeCondition(t, c, "n1"); cd.Status != corev1.ConditionTrue || cd.Reason != ReasonNotReady {
		t.Fatalf("%+v", cd)
	}
}

func TestNodeStatusCapacity(t *testing.T) {
	ctx := context.Background()
	c := fake.NewClientset(kubeTestNode("n1", map[string]string{"other": "kept", AnnotationMaxPods: "3"}))
	s := NewNodeStatus(c, "n1")
	if err := s.SetCapacity(ctx, 12); err != nil {
		t.Fatal(err)
	}
	w := statusPatches(t, c)
	want := map[string]any{"metadata": map[string]any{"annotations": map[string]any{AnnotationMaxAvailableIP: "12", AnnotationMaxPods: "12"}}}
	if len(w) != 1 || !reflect.DeepEqual(w[0], want) {
		t.Fatalf("patches %v, want %v", w, want)
	}
	n, _ := c.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
	if !maps.Equal(n.Annotations, map[string]string{"other": "kept", AnnotationMaxAvailableIP: "12", AnnotationMaxPods: "12"}) {
		t.Fatalf("annotations %v", n.Annotations)
	}
	c.ClearActions()
	if err := s.SetCapacity(ctx, 12); err != nil || len(c.Actions()) != 0 {
		t.Fatalf("same capacity again: %v, %v", err, c.Actions())
	}
	if err := s.SetCapacity(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if w := statusPatches(t, c); len(w) != 1 {
		t.Fatalf("patches %v", w)
	}
	if err := s.SetCapacity(ctx, -1); err == nil || !strings.Contains(err.Error(), "-1") {
		t.Fatalf("negative capacity: %v", err)
	}
}

// A failed patch is reported, and the node is read again before the next decision.
func TestNodeStatusPatchFailure(t *testing.T) {
	ctx := context.Background()
	c := fake.NewClientset(kubeTestNode("n1", nil))
	fail := true
	c.PrependReactor("patch", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
		if fail {
			fail = false
			return true, nil, errors.New("apiserver says no")
		}
		return false, nil, nil
	})
	s := NewNodeStatus(c, "n1")
	err := s.SetNetworkReady(ctx, true, "", "")
	if err == nil || !strings.Contains(err.Error(), `node "n1"`) || !strings.Contains(err.Error(), "apiserver says no") {
		t.Fatalf("err %v", err)
	}
	c.ClearActions()
	if err := s.SetNetworkReady(ctx, true, "", ""); err != nil {
		t.Fatal(err)
	}
	if g := nodeGets(c); g != 1 {
		t.Fatalf("%d reads after a failed patch, want 1", g)
	}
	if cd := fakeNodeCondition(t, c, "n1"); cd.Reason != ReasonReady {
		t.Fatalf("%+v", cd)
	}
	if err := NewNodeStatus(c, "absent").SetCapacity(ctx, 1); err == nil || !strings.Contains(err.Error(), `read node "absent"`) {
		t.Fatalf("absent node: %v", err)
	}
}

func drainEvents(ch chan string) []string {
	var out []string
	for {
		select {
		case s := <-ch:
			out = append(out, s)
		default:
			return out
		}
	}
}

// A state held for an hour, reported every second, emits one Event per Repeat; a reason at most once per
// Spacing.
func TestEventsDedupe(t *testing.T) {
	rec := record.NewFakeRecorder(10000)
	e := newEvents(rec, "n1", nil)
	clk := newKubeTestClock()
	e.Now = clk.Now
	for range 3600 {
		e.Eventf(corev1.EventTypeWarning, "VSwitchExhausted", "vSwitch %s has no free address", "vsw-1")
		clk.Add(time.Second)
	}
	got := drainEvents(rec.Events)
	if len(got) != 6 { // at 0, 10, 20, 30, 40, 50 minutes
		t.Fatalf("%d events in an hour, want 6: %v", len(got), got[:min(len(got), 8)])
	}
	if got[0] != "Warning VSwitchExhausted vSwitch vsw-1 has no free address" {
		t.Fatalf("event %q", got[0])
	}
	// Another reason is not held back by the first; the same reason with a new message waits for Spacing.
	e.Eventf(corev1.EventTypeNormal, "ENIAttached", "eni-1")
	e.Eventf(corev1.EventTypeNormal, "ENIAttached", "eni-2")
	clk.Add(DefaultEventSpacing)
	e.Eventf(corev1.EventTypeNormal, "ENIAttached", "eni-3")
	if got := drainEvents(rec.Events); !reflect.DeepEqual(got, []string{"Normal ENIAttached eni-1", "Normal ENIAttached eni-3"}) {
		t.Fatalf("events %v", got)
	}
	if n := len(e.sent) + len(e.byReason); n > 4 {
		t.Fatalf("%d remembered entries, want old ones forgotten", n)
	}
}

// Events reach the API as corev1 Events on the Node, through client-go's broadcaster.
func TestEventsReachTheAPI(t *testing.T) {
	c := fake.NewClientset()
	e := NewEvents(c, "n1")
	defer e.Close()
	e.Eventf(corev1.EventTypeWarning, "VSwitchExhausted", "vSwitch %s has no free address", "vsw-1")
	ev := waitForNodeEvent(t, func() ([]corev1.Event, error) {
		l, err := c.CoreV1().Events("default").List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		return l.Items, nil
	})
	checkNodeEvent(t, ev, "n1")
}

func waitForNodeEvent(t *testing.T, list func() ([]corev1.Event, error)) corev1.Event {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		evs, err := list()
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) > 0 {
			if len(evs) > 1 {
				t.Fatalf("events %+v, want one", evs)
			}
			return evs[0]
		}
		if time.Now().After(deadline) {
			t.Fatal("no Event reached the API")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func checkNodeEvent(t *testing.T, ev corev1.Event, node string) {
	t.Helper()
	io := ev.InvolvedObject
	if io.Kind != "Node" || io.Name != node || io.UID != types.UID(node) || ev.Type != corev1.EventTypeWarning ||
		ev.Reason != "VSwitchExhausted" || ev.Message != "vSwitch vsw-1 has no free address" || ev.Source.Component != "weftd" ||
		ev.Source.Host != node || ev.Namespace != "default" {
		t.Fatalf("event %+v", ev)
	}
}

func kubeTestPod(ns, name, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name), ResourceVersion: "7",
			Labels: map[string]string{"app": "x"}, Annotations: map[string]string{"k8s.aliyun.com/pod-ip-reservation": "true"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}, OwnerReferences: []metav1.OwnerReference{{Name: "rs"}}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "busybox",
			Env: []corev1.EnvVar{{Name: "BIG", Value: strings.Repeat("x", 1000)}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.5", Conditions: []corev1.PodCondition{{Type: corev1.PodReady}}},
	}
}

func TestTrimPod(t *testing.T) {
	p := kubeTestPod("ns", "a", "n1")
	del := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	p.DeletionTimestamp, p.Spec.HostNetwork = &del, true
	got, err := TrimPod(p)
	if err != nil {
		t.Fatal(err)
	}
	want := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a", UID: "uid-a", ResourceVersion: "7", DeletionTimestamp: &del,
		Annotations: map[string]string{AnnotationPodIPReservation: "true"}},
		Spec: corev1.PodSpec{NodeName: "n1", HostNetwork: true}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("trimmed %+v\nwant %+v", got, want)
	}
	if again, _ := TrimPod(got); !reflect.DeepEqual(again, want) {
		t.Fatalf("not idempotent: %+v", again)
	}
	tomb := cache.DeletedFinalStateUnknown{Key: "ns/a", Obj: p}
	if got, _ := TrimPod(tomb); !reflect.DeepEqual(got, tomb) {
		t.Fatalf("a tombstone changed: %+v", got)
	}
}

func TestTrimNode(t *testing.T) {
	del := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", UID: "u1", ResourceVersion: "3", DeletionTimestamp: &del,
		Annotations: map[string]string{"a": "b"}, Labels: map[string]string{"l": "v"}},
		Spec:   corev1.NodeSpec{Unschedulable: true, PodCIDR: "10.0.0.0/24", ProviderID: "alicloud://i-1"},
		Status: corev1.NodeStatus{Images: []corev1.ContainerImage{{Names: []string{"big"}}}, Conditions: []corev1.NodeCondition{{Type: "Ready"}}}}
	got, _ := TrimNode(n)
	want := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", UID: "u1", ResourceVersion: "3", DeletionTimestamp: &del},
		Spec: corev1.NodeSpec{Unschedulable: true}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("trimmed %+v", got)
	}
	if again, _ := TrimNode(got); !reflect.DeepEqual(again, want) {
		t.Fatalf("not idempotent: %+v", again)
	}
	if got, _ := TrimNode("x"); got != "x" {
		t.Fatalf("%v", got)
	}
}

func podWithPhase(p *corev1.Pod, ph corev1.PodPhase) *corev1.Pod { p.Status.Phase = ph; return p }

// The pod informer's logic against the fake clientset (which ignores field selectors: the real API server's
// test checks that one). The fake serves the objects as created; what the cache holds is trimmed.
func TestPodsLive(t *testing.T) {
	del := metav1.Now()
	hostNet := kubeTestPod("kube-system", "host", "n1")
	hostNet.Spec.HostNetwork = true
	deleting := kubeTestPod("ns", "deleting", "n1")
	deleting.DeletionTimestamp = &del
	deleting.Finalizers = []string{"x"}
	c := fake.NewClientset(kubeTestPod("ns", "running", "n1"), podWithPhase(kubeTestPod("ns", "pending", "n1"), corev1.PodPending), hostNet,
		podWithPhase(kubeTestPod("ns", "done", "n1"), corev1.PodSucceeded), podWithPhase(kubeTestPod("ns", "failed", "n1"), corev1.PodFailed), deleting)
	p := NewPods(c, "n1")
	if p.Synced() || p.Live() != nil {
		t.Fatal("synced before Start")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p.Start(ctx)
	if err := p.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[PodKey]bool{{Namespace: "ns", Name: "running"}: true, {Namespace: "ns", Name: "pending"}: true, {Namespace: "ns", Name: "deleting"}: true}
	if got := p.Live(); !maps.Equal(got, want) {
		t.Fatalf("Live %v, want %v", got, want)
	}
	info, ok := p.Get("ns", "deleting")
	if !ok || !reflect.DeepEqual(info, PodInfo{Namespace: "ns", Name: "deleting", UID: "uid-deleting", Phase: corev1.PodRunning, Deleting: true, Reserve: true}) {
		t.Fatalf("Get %+v %v", info, ok)
	}
	if info, ok := p.Get("kube-system", "host"); !ok || !info.HostNetwork {
		t.Fatalf("Get host %+v %v", info, ok)
	}
	if _, ok := p.Get("ns", "absent"); ok {
		t.Fatal("found an absent pod")
	}
	for _, obj := range p.informer.GetStore().List() {
		if pod := obj.(*corev1.Pod); len(pod.Annotations) > 1 || pod.Labels != nil || len(pod.Spec.Containers) != 0 || pod.ManagedFields != nil {
			t.Fatalf("cached pod not trimmed: %+v", pod)
		}
	}
	// A pod that terminates leaves Live.
	run, _ := c.CoreV1().Pods("ns").Get(ctx, "running", metav1.GetOptions{})
	run.Status.Phase = corev1.PodFailed
	if _, err := c.CoreV1().Pods("ns").UpdateStatus(ctx, run, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the failed pod leaves Live", func() bool { return !p.Live()[PodKey{Namespace: "ns", Name: "running"}] })
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestNodesStates(t *testing.T) {
	del := metav1.Now()
	cordoned := kubeTestNode("cordoned", nil)
	cordoned.Spec.Unschedulable = true
	deleting := kubeTestNode("deleting", nil)
	deleting.DeletionTimestamp, deleting.Finalizers = &del, []string{"x"}
	c := fake.NewClientset(kubeTestNode("plain", map[string]string{"a": "b"}), cordoned, deleting)
	n := NewNodes(c)
	if n.Synced() || n.States() != nil {
		t.Fatal("synced before Start")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n.Start(ctx)
	if err := n.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[string]NodeState{"plain": {Exists: true}, "cordoned": {Exists: true, Unschedulable: true}, "deleting": {Exists: true, Deleting: true}}
	if got := n.States(); !maps.Equal(got, want) {
		t.Fatalf("States %v, want %v", got, want)
	}
	if err := c.CoreV1().Nodes().Delete(ctx, "plain", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deleted node leaves States", func() bool { _, ok := n.States()["plain"]; return !ok })
}

func TestWaitForSyncGivesUp(t *testing.T) {
	c := fake.NewClientset()
	c.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("forbidden")
	})
	p := NewPods(c, "n1")
	ctx, cancel := context.WithCancel(context.Background())
	p.Start(ctx)
	cancel()
	if err := p.WaitForSync(ctx); err == nil || !strings.Contains(err.Error(), "pod informer not synced") {
		t.Fatalf("err %v", err)
	}
}

// daemonSetRules are the rules the DaemonSet grants weftd for the eni backend (the package comment lists them). The
// test's ServiceAccount has exactly these, so a rule missing from them fails here.
var daemonSetRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}},
	{APIGroups: []string{"apps"}, Resources: []string{"statefulsets"}, Verbs: []string{"get"}},
	{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "watch"}},
	{APIGroups: []string{""}, Resources: []string{"nodes/status"}, Verbs: []string{"patch"}},
	{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
}

// eniKubeEnv is one real API server shared by the subtests of TestKubeAgainstAPIServer, each with its own nodes.
type eniKubeEnv struct {
	*testenv.KubeEnv
	sa kubernetes.Interface // limited to daemonSetRules
}

func TestKubeAgainstAPIServer(t *testing.T) {
	k := testenv.StartAPIServer(t)
	sa, err := kubernetes.NewForConfig(k.RESTConfigForToken(k.ServiceAccountToken(t, "kube-system", "weft", daemonSetRules)))
	if err != nil {
		t.Fatal(err)
	}
	e := &eniKubeEnv{KubeEnv: k, sa: sa}
	t.Run("node status through nodes/status", e.testNodeStatus)
	t.Run("pod informer sees this node's pods only", e.testPods)
	t.Run("node informer", e.testNodes)
	t.Run("events on the node", e.testEvents)
	t.Run("StatefulSets of reservations", e.testStatefulSets)
}

func (e *eniKubeEnv) createNode(t *testing.T, n *corev1.Node) {
	t.Helper()
	if _, err := e.Client.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create node %s: %v", n.Name, err)
	}
}

func (e *eniKubeEnv) getNode(t *testing.T, name string) *corev1.Node {
	t.Helper()
	n, err := e.Client.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (e *eniKubeEnv) testNodeStatus(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e.createNode(t, kubeTestNode("status-1", map[string]string{"other": "kept"}))
	// Another writer's condition before weft's (the cloud route controller's): replaced, not doubled.
	n := e.getNode(t, "status-1")
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionTrue, Reason: "NoRouteCreated"},
		{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory"}}
	if _, err := e.Client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	s := NewNodeStatus(e.sa, "status-1")
	if err := s.SetNetworkReady(ctx, false, "NoVSwitchAddress", "vSwitch vsw-1 has no free address"); err != nil {
		t.Fatal(err)
	}
	n = e.getNode(t, "status-1")
	cd := networkUnavailableOf(t, n)
	if cd.Status != corev1.ConditionTrue || cd.Reason != "NoVSwitchAddress" || cd.Message != "weft: vSwitch vsw-1 has no free address" ||
		len(n.Status.Conditions) != 2 {
		t.Fatalf("conditions %+v", n.Status.Conditions)
	}
	if err := s.SetNetworkReady(ctx, true, "", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.SetCapacity(ctx, 30); err != nil {
		t.Fatal(err)
	}
	n = e.getNode(t, "status-1")
	if cd := networkUnavailableOf(t, n); cd.Status != corev1.ConditionFalse || cd.Reason != ReasonReady || cd.LastTransitionTime.IsZero() {
		t.Fatalf("ready condition %+v", cd)
	}
	if !maps.Equal(n.Annotations, map[string]string{"other": "kept", AnnotationMaxAvailableIP: "30", AnnotationMaxPods: "30"}) {
		t.Fatalf("annotations %v (written through nodes/status)", n.Annotations)
	}
	// Unchanged state: the node is not written again.
	rv := n.ResourceVersion
	for range 5 {
		if err := s.SetNetworkReady(ctx, true, "", ""); err != nil {
			t.Fatal(err)
		}
		if err := s.SetCapacity(ctx, 30); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.getNode(t, "status-1").ResourceVersion; got != rv {
		t.Fatalf("resourceVersion %s -> %s for an unchanged state", rv, got)
	}
	// The ServiceAccount has no write access to the node itself: nodes/status is all it needs.
	_, err := e.sa.CoreV1().Nodes().Patch(ctx, "status-1", types.MergePatchType, []byte(`{"metadata":{"labels":{"x":"y"}}}`), metav1.PatchOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("patching the node itself: %v, want forbidden (the rules grant nodes/status only)", err)
	}
}

func networkUnavailableOf(t *testing.T, n *corev1.Node) corev1.NodeCondition {
	t.Helper()
	var found []corev1.NodeCondition
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeNetworkUnavailable {
			found = append(found, c)
		}
	}
	if len(found) != 1 {
		t.Fatalf("NetworkUnavailable conditions %+v, want one", found)
	}
	return found[0]
}

func (e *eniKubeEnv) createPod(t *testing.T, ns, name, node string, hostNetwork bool, phase corev1.PodPhase) {
	t.Helper()
	ctx := context.Background()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: map[string]string{"big": strings.Repeat("x", 500)}},
		Spec: corev1.PodSpec{NodeName: node, HostNetwork: hostNetwork, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
	created, err := e.Client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s/%s: %v", ns, name, err)
	}
	if phase != "" {
		created.Status.Phase = phase
		if _, err := e.Client.CoreV1().Pods(ns).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("pod %s/%s phase %s: %v", ns, name, phase, err)
		}
	}
}

func (e *eniKubeEnv) testPods(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e.createNode(t, kubeTestNode("pods-1", nil))
	e.createNode(t, kubeTestNode("pods-2", nil))
	// Pods need their namespace's default ServiceAccount (no controller manager runs to create it).
	e.ServiceAccountToken(t, "app", "default", nil)
	e.createPod(t, "app", "web", "pods-1", false, corev1.PodRunning)
	e.createPod(t, "app", "queued", "pods-1", false, "")
	e.createPod(t, "app", "hostnet", "pods-1", true, corev1.PodRunning)
	e.createPod(t, "app", "job", "pods-1", false, corev1.PodSucceeded)
	e.createPod(t, "app", "elsewhere", "pods-2", false, corev1.PodRunning)

	p := NewPods(e.sa, "pods-1")
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	p.Start(pctx)
	if err := p.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[PodKey]bool{{Namespace: "app", Name: "web"}: true, {Namespace: "app", Name: "queued"}: true}
	if got := p.Live(); !maps.Equal(got, want) {
		t.Fatalf("Live %v, want %v", got, want)
	}
	if _, ok := p.Get("app", "elsewhere"); ok {
		t.Fatal("the pod informer holds another node's pod: the field selector is not applied")
	}
	if n := len(p.informer.GetStore().List()); n != 4 {
		t.Fatalf("%d pods cached, want this node's 4", n)
	}
	info, ok := p.Get("app", "web")
	if !ok || info.UID == "" || info.Phase != corev1.PodRunning || info.Deleting {
		t.Fatalf("Get web %+v %v", info, ok)
	}
	// Changes arrive: a new pod, a pod deleted.
	e.createPod(t, "app", "later", "pods-1", false, "")
	if err := e.Client.CoreV1().Pods("app").Delete(ctx, "web", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "Live follows the API", func() bool {
		return maps.Equal(p.Live(), map[PodKey]bool{{Namespace: "app", Name: "queued"}: true, {Namespace: "app", Name: "later"}: true})
	})
	for _, obj := range p.informer.GetStore().List() {
		if pod := obj.(*corev1.Pod); len(pod.Annotations) > 1 || len(pod.Spec.Containers) != 0 || pod.ManagedFields != nil {
			t.Fatalf("cached pod not trimmed: %+v", pod)
		}
	}
}

func (e *eniKubeEnv) testNodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e.createNode(t, kubeTestNode("gc-plain", nil))
	cordoned := kubeTestNode("gc-cordoned", nil)
	cordoned.Spec.Unschedulable = true
	e.createNode(t, cordoned)
	deleting := kubeTestNode("gc-deleting", nil)
	deleting.Finalizers = []string{"weft.test/hold"}
	e.createNode(t, deleting)
	if err := e.Client.CoreV1().Nodes().Delete(ctx, "gc-deleting", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // let it go
		_, _ = e.Client.CoreV1().Nodes().Patch(context.Background(), "gc-deleting", types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
	})
	n := NewNodes(e.sa)
	nctx, stop := context.WithCancel(ctx)
	defer stop()
	n.Start(nctx)
	if err := n.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	st := n.States()
	if st["gc-plain"] != (NodeState{Exists: true}) || st["gc-cordoned"] != (NodeState{Exists: true, Unschedulable: true}) ||
		st["gc-deleting"] != (NodeState{Exists: true, Deleting: true}) {
		t.Fatalf("States %v", st)
	}
	if err := e.Client.CoreV1().Nodes().Delete(ctx, "gc-plain", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a deleted node leaves States", func() bool { _, ok := n.States()["gc-plain"]; return !ok })
}

func (e *eniKubeEnv) testEvents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e.createNode(t, kubeTestNode("events-1", nil))
	ev := NewEvents(e.sa, "events-1")
	defer ev.Close()
	clk := newKubeTestClock()
	ev.Now = clk.Now
	for range 50 {
		ev.Eventf(corev1.EventTypeWarning, "VSwitchExhausted", "vSwitch %s has no free address", "vsw-1")
	}
	// As `kubectl describe node` looks for a node's events.
	sel := "involvedObject.kind=Node,involvedObject.name=events-1,involvedObject.uid=events-1"
	got := waitForNodeEvent(t, func() ([]corev1.Event, error) {
		l, err := e.Client.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: sel})
		if err != nil {
			return nil, err
		}
		return l.Items, nil
	})
	checkNodeEvent(t, got, "events-1")
	if got.Count > 1 {
		t.Fatalf("count %d: the repeats were not held back", got.Count)
	}
	// The state still holds after Repeat: emitted again, which client-go aggregates into the same Event's count
	// (a patch: the rule events/patch).
	clk.Add(DefaultEventRepeat)
	ev.Eventf(corev1.EventTypeWarning, "VSwitchExhausted", "vSwitch %s has no free address", "vsw-1")
	eventually(t, "the repeat counted on the same Event", func() bool {
		l, err := e.Client.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: sel})
		return err == nil && len(l.Items) == 1 && l.Items[0].Count == 2
	})
}

// WeftENIExhausted is its own condition: True with the state's reason while no more addresses can be had, False
// after; it leaves NetworkUnavailable as it is, and an unchanged state writes nothing.
func TestNodeStatusExhausted(t *testing.T) {
	ctx := context.Background()
	c := fake.NewClientset(kubeTestNode("n1", nil))
	s := NewNodeStatus(c, "n1")
	if err := s.SetNetworkReady(ctx, true, "", ""); err != nil {
		t.Fatal(err)
	}
	cond := func() corev1.NodeCondition {
		n, err := c.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, cd := range n.Status.Conditions {
			if cd.Type == ConditionExhausted {
				return cd
			}
		}
		return corev1.NodeCondition{}
	}
	if err := s.SetExhausted(ctx, true, "VSwitchExhausted", "vSwitch vsw-1 has no free addresses"); err != nil {
		t.Fatal(err)
	}
	if cd := cond(); cd.Status != corev1.ConditionTrue || cd.Reason != "VSwitchExhausted" || !strings.Contains(cd.Message, "vsw-1") {
		t.Fatalf("exhausted: %+v", cd)
	}
	if cd := fakeNodeCondition(t, c, "n1"); cd.Status != corev1.ConditionFalse {
		t.Errorf("NetworkUnavailable changed with WeftENIExhausted: %+v", cd)
	}
	c.ClearActions()
	if err := s.SetExhausted(ctx, true, "VSwitchExhausted", "vSwitch vsw-1 has no free addresses"); err != nil {
		t.Fatal(err)
	}
	if n := len(c.Actions()); n != 0 {
		t.Errorf("%d API calls for an unchanged state", n)
	}
	if err := s.SetExhausted(ctx, false, "", ""); err != nil {
		t.Fatal(err)
	}
	if cd := cond(); cd.Status != corev1.ConditionFalse || cd.Reason != ReasonAddressesAvailable {
		t.Fatalf("recovered: %+v", cd)
	}
}
