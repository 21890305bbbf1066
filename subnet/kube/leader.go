package kube

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"

	"github.com/weftnet/weft/subnet"
)

var (
	_ subnet.LeaderElector    = (*Manager)(nil)
	_ subnet.RouteStatusStore = (*Manager)(nil)
)

// leaseNamespace is where the election Lease lives: the pod's namespace, else kube-system.
func leaseNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	return "kube-system"
}

// Lead holds a coordination.k8s.io Lease named weft-<name>; a dead leader's Lease expires after 15 s.
func (m *Manager) Lead(ctx context.Context, name, id string) (context.Context, error) {
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: "weft-" + name, Namespace: leaseNamespace()},
		Client:     m.o.Client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id},
	}
	started := make(chan context.Context, 1)
	lctx, cancel := context.WithCancel(ctx)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: lock, LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
		ReleaseOnCancel: true, Name: "weft-" + name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(c context.Context) { started <- c },
			OnStoppedLeading: cancel,
		},
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("election %s: %w", name, err)
	}
	go le.Run(lctx)
	select {
	case c := <-started:
		return c, nil
	case <-ctx.Done():
		cancel()
		return nil, ctx.Err()
	}
}

// Reasons the route condition uses when the route exists (as Kubernetes' cloud route controller does).
const reasonRouteCreated = "RouteCreated"

// nodeForLease finds the node whose pod CIDRs are the lease's.
func (m *Manager) nodeForLease(ctx context.Context, l *subnet.Lease) (*corev1.Node, error) {
	if err := m.startInformer(ctx); err != nil {
		return nil, err
	}
	for _, obj := range m.informer.GetStore().List() {
		n := obj.(*corev1.Node)
		v4, v6, err := podCIDRs(n)
		if err == nil && v4 == l.Subnet && v6 == l.IPv6Subnet {
			return n, nil
		}
	}
	return nil, fmt.Errorf("no node has pod CIDR %s", l.Key())
}

// conditionPrefix starts the message of every NetworkUnavailable condition weft's route leader writes.
const conditionPrefix = "weft: "

// PublishRouteStatus sets the node's NetworkUnavailable condition (False/RouteCreated when routed, True with the
// reason when not) and records an Event for a node left unrouted.
func (m *Manager) PublishRouteStatus(ctx context.Context, l *subnet.Lease, st subnet.RouteStatus) error {
	n, err := m.nodeForLease(ctx, l)
	if err != nil {
		return err
	}
	cond := corev1.NodeCondition{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionFalse, Reason: reasonRouteCreated,
		Message: conditionPrefix + "the VPC route of this node is Available", LastTransitionTime: metav1.Now(), LastHeartbeatTime: metav1.Now()}
	if !st.Routed {
		cond.Status, cond.Reason = corev1.ConditionTrue, st.Reason
		cond.Message = conditionPrefix + "this node has no Available VPC route: " + st.Reason
	}
	if err := m.patchCondition(ctx, n.Name, cond); err != nil {
		return err
	}
	if !st.Routed {
		ev := &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{GenerateName: n.Name + ".", Namespace: "default"},
			InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: n.Name, UID: n.UID, APIVersion: "v1"},
			Reason:         st.Reason, Message: cond.Message, Type: corev1.EventTypeWarning,
			Source: corev1.EventSource{Component: "weftd"}, FirstTimestamp: metav1.Now(), LastTimestamp: metav1.Now(), Count: 1,
		}
		if _, err := m.o.Client.CoreV1().Events("default").Create(ctx, ev, metav1.CreateOptions{}); err != nil {
			klog.Warningf("event for node %s: %v", n.Name, err)
		}
	}
	return nil
}

// ForgetRouteStatus has nothing to do: a lease is removed with its Node, and the condition goes with it.
func (m *Manager) ForgetRouteStatus(context.Context, *subnet.Lease) error { return nil }

// RouteStatus reads this node's condition as published by the leader.
func (m *Manager) RouteStatus(ctx context.Context, l *subnet.Lease) (subnet.RouteStatus, bool, error) {
	n, err := m.nodeForLease(ctx, l)
	if err != nil {
		return subnet.RouteStatus{}, false, err
	}
	for _, c := range n.Status.Conditions {
		// Only weft's own condition counts: a cloud-controller-manager's route controller uses the same reasons.
		if c.Type != corev1.NodeNetworkUnavailable || !strings.HasPrefix(c.Message, conditionPrefix) {
			continue
		}
		switch {
		case c.Reason == reasonRouteCreated && c.Status == corev1.ConditionFalse:
			return subnet.RouteStatus{Routed: true}, true, nil
		case c.Status == corev1.ConditionTrue && c.Reason != "":
			return subnet.RouteStatus{Reason: c.Reason}, true, nil
		}
	}
	return subnet.RouteStatus{}, false, nil
}
