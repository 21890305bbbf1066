package eni

import (
	"context"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/cloud/aliyun/sim"
)

// alisimClient is the real SDK client against an in-process alisim on loopback.
func alisimClient(t *testing.T) (*aliyun.Client, *sim.World) {
	t.Helper()
	st := sim.DefaultState()
	st.Timing.ENITransition = 0
	w := sim.NewWorld(st, nil, "")
	srv := httptest.NewServer(sim.NewServer(w))
	t.Cleanup(srv.Close)
	cl, err := aliyun.NewClient(aliyun.Config{Region: "cn-hangzhou", ECSEndpoint: strings.TrimPrefix(srv.URL, "http://"), Scheme: "HTTP",
		Credentials: aliyun.Static{AccessKeyID: sim.DefaultAccessKeyID, AccessKeySecret: sim.DefaultAccessKeySecret}})
	if err != nil {
		t.Fatal(err)
	}
	return cl, w
}

// The elected node deletes this cluster's ENIs left detached for the grace period (their node gone, or alive but
// not taking them back), and nothing else: not before the grace, not another cluster's, not untagged ones, not
// those of a node being drained or deleted.
func TestCollectDetachedENIs(t *testing.T) {
	ctx := context.Background()
	cl, w := alisimClient(t)
	create := func(tags map[string]string) string {
		t.Helper()
		e, err := cl.CreateENI(ctx, aliyun.NewENI{VSwitchID: "vsw-alisim0001", SecurityGroupIDs: []string{"sg-alisim0001"}, Tags: tags})
		if err != nil {
			t.Fatal(err)
		}
		return e.ID
	}
	ours := func(node string) map[string]string { return map[string]string{TagCluster: "c1", TagNode: node} }
	gone := create(ours("gone"))
	cordoned := create(ours("cordoned"))
	deleting := create(ours("deleting"))
	live := create(ours("live"))
	other := create(map[string]string{TagCluster: "c2", TagNode: "gone"})
	untagged := create(nil)

	now := metav1.Now()
	kc := fake.NewClientset(
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "cordoned"}, Spec: corev1.NodeSpec{Unschedulable: true}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "deleting", DeletionTimestamp: &now, Finalizers: []string{"x"}}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "live"}})
	nodes := NewNodes(kc)
	nodes.Start(ctx)
	if err := nodes.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	clk := newKubeTestClock()
	ev := NewEvents(kc, "n1")
	defer ev.Close()
	n := &Network{cfg: Config{ClusterID: "c1", ENIGCGrace: 10 * time.Minute},
		d: agentDeps{cloud: cl, nodes: nodes, events: ev, clock: clk, m: newMetrics(nil)}}
	left := func() []string {
		t.Helper()
		var ids []string
		for _, id := range []string{gone, cordoned, deleting, live, other, untagged} {
			if e, ok := w.ENI(id); ok && e.Status != "Deleting" && e.Transition != "Deleting" {
				ids = append(ids, id)
			}
		}
		sort.Strings(ids)
		return ids
	}
	all := left()
	since := map[string]time.Time{}
	n.collectENIsOnce(ctx, since)
	if got := left(); strings.Join(got, ",") != strings.Join(all, ",") {
		t.Fatalf("deleted before the grace: %v left of %v", got, all)
	}
	clk.Add(11 * time.Minute)
	n.collectENIsOnce(ctx, since)
	want := []string{cordoned, deleting, other, untagged}
	sort.Strings(want)
	if got := left(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("after the grace %v left, want %v (%s, whose node is gone, and %s, whose node left it detached, deleted)", got, want, gone, live)
	}
}
