package coordination_test

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/weftnet/weft/internal/coordination"
	"github.com/weftnet/weft/subnet"
	"github.com/weftnet/weft/subnet/kube"
)

func kubeCoordinator(t *testing.T, nodes ...*corev1.Node) (*coordination.Kube, *fake.Clientset) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "net-conf.json")
	if err := os.WriteFile(path, []byte(`{"Network":"10.244.0.0/16","Backend":{"Type":"ali-vpc"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cs := fake.NewClientset()
	for _, n := range nodes {
		if _, err := cs.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	m, err := kube.New(ctx, kube.Options{Client: cs, NodeName: "n1", NetConfPath: path})
	if err != nil {
		t.Fatal(err)
	}
	return &coordination.Kube{Client: cs, Nodes: m, Namespace: "kube-flannel"}, cs
}

// The leader's status round-trips through the node's NetworkUnavailable condition; a condition another
// controller wrote with the same reason (a cloud-controller-manager's route controller) is not weft's word.
func TestKubeStatusCondition(t *testing.T) {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Spec: corev1.NodeSpec{PodCIDR: "10.244.1.0/24", PodCIDRs: []string{"10.244.1.0/24"}},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionFalse,
			Reason: "RouteCreated", Message: "RouteController created a route"}}}}
	c, cs := kubeCoordinator(t, n)
	ctx := context.Background()
	l := &subnet.Lease{EnableIPv4: true, Subnet: netip.MustParsePrefix("10.244.1.0/24"), NodeName: "n1"}
	if st, ok, err := c.Status(ctx, l); ok || err != nil {
		t.Fatalf("another controller's RouteCreated read as %+v ok=%v err=%v", st, ok, err)
	}
	if _, _, err := c.Status(ctx, &subnet.Lease{Subnet: l.Subnet}); err == nil {
		t.Fatal("a lease naming no Node must be an error, not a silent miss")
	}
	if err := c.Publish(ctx, l, coordination.Status{Reason: "RouteTableQuotaExceeded"}); err != nil {
		t.Fatal(err)
	}
	// The cache follows the API server shortly after a write.
	eventually := func(what string, good func(coordination.Status, bool) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			st, ok, err := c.Status(ctx, l)
			if err == nil && good(st, ok) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %+v ok=%v err=%v", what, st, ok, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	eventually("after publishing the quota reason", func(st coordination.Status, ok bool) bool {
		return ok && !st.Routed && st.Reason == "RouteTableQuotaExceeded"
	})
	evs, err := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
	if err != nil || len(evs.Items) != 1 || evs.Items[0].Reason != "RouteTableQuotaExceeded" || evs.Items[0].Type != corev1.EventTypeWarning {
		t.Fatalf("events %+v (%v), want one Warning with the reason", evs, err)
	}
	if err := c.Publish(ctx, l, coordination.Status{Routed: true}); err != nil {
		t.Fatal(err)
	}
	eventually("after publishing routed", func(st coordination.Status, ok bool) bool { return ok && st.Routed })
}

// The election Lease lives in the configured namespace under weft-<name>.
func TestKubeLeadLease(t *testing.T) {
	c, cs := kubeCoordinator(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lctx, err := c.Lead(ctx, "ali-vpc-routes", "i-1/n1")
	if err != nil {
		t.Fatal(err)
	}
	if lctx.Err() != nil {
		t.Fatal("leadership context ended at once")
	}
	lease, err := cs.CoordinationV1().Leases("kube-flannel").Get(ctx, "weft-ali-vpc-routes", metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != "i-1/n1" {
		t.Fatalf("lease %+v (%v), want held by i-1/n1", lease, err)
	}
}
