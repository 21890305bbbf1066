package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/weftnet/weft/internal/lab"
)

// A node whose podCIDR arrives after weftd started (kube-controller-manager is slow, the node joined first)
// retries RegisterNetwork until it has one. Each retry builds the cloud client again: the retry must not fail
// on metrics registered by the previous one (it used to, with AlreadyRegisteredError, for ever), and the node
// must end up routed and ready.
func TestAliVPCKubePodCIDRLate(t *testing.T) {
	e := newVPCEnv(t, 1, 5)
	k, saConfig := e.startAPIServer()
	ctx := context.Background()
	n := e.nodes[0]
	if _, err := k.Client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const port = 10360
	e.startKube(n, saConfig, fmt.Sprintf(vpcConf, 5), port)
	// weftd waits for the podCIDR meanwhile, not ready and saying why.
	if err := lab.WaitFor(30*time.Second, "not ready for want of a pod CIDR", func() (bool, error) {
		code, body := readyz(n, port)
		return code == 503 && strings.Contains(body, "pod cidr not assigned"), nil
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Second) // several RegisterNetwork retries, each building the cloud client again
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"podCIDR": "10.244.7.0/24", "podCIDRs": []string{"10.244.7.0/24"}}})
	if _, err := k.Client.CoreV1().Nodes().Patch(ctx, n.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := lab.WaitFor(60*time.Second, "ready with its VPC route", func() (bool, error) {
		code, body := readyz(n, port)
		if code != 200 {
			return false, fmt.Errorf("/readyz %d %s", code, body)
		}
		return strings.Contains(strings.Join(e.entries(), "\n"), `"dst": "10.244.7.0/24"`), nil
	}); err != nil {
		t.Fatalf("%v\nentries: %v", err, e.entries())
	}
	if logs := n.Daemon.Logs(); strings.Contains(logs, "AlreadyRegistered") || strings.Contains(logs, "duplicate metrics collector") {
		t.Errorf("a RegisterNetwork retry hit the metrics registry:\n%s", tailN(logs, 20))
	}
	node, err := k.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	routed := false
	for _, c := range node.Status.Conditions {
		routed = routed || (c.Type == corev1.NodeNetworkUnavailable && c.Status == corev1.ConditionFalse && c.Reason == "RouteCreated")
	}
	if !routed {
		t.Errorf("node conditions %+v, want NetworkUnavailable=False/RouteCreated", node.Status.Conditions)
	}
}
