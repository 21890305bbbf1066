package testenv

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// TestAPIServer checks the helper itself: admin access, a ServiceAccount limited to its rules (through a
// kubeconfig file, as weftd would load it), and node IPAM from the controller manager.
func TestAPIServer(t *testing.T) {
	k := StartAPIServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}
	if _, err := k.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatalf("admin creates a node: %v", err)
	}

	tok := k.ServiceAccountToken(t, "kube-flannel", "reader", []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get"}}})
	rc, err := clientcmd.BuildConfigFromFlags("", k.KubeconfigForToken(t, tok))
	if err != nil {
		t.Fatal(err)
	}
	sa, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sa.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{}); err != nil {
		t.Fatalf("the service account may get nodes: %v", err)
	}
	if _, err := sa.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("listing nodes without the list verb: err %v, want Forbidden", err)
	}

	k.StartControllerManager(t, ControllerManagerOptions{ClusterCIDRs: []string{"10.244.0.0/16"}})
	for {
		n, err := k.Client.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if n.Spec.PodCIDR != "" {
			if n.Spec.PodCIDR != "10.244.0.0/24" {
				t.Fatalf("podCIDR %s, want the first /24 of 10.244.0.0/16", n.Spec.PodCIDR)
			}
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the controller manager never assigned a pod CIDR; its log:\n%s", k.ControllerManagerLogTail())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
