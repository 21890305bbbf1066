package coordination

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"

	"github.com/weftnet/weft/subnet"
)

// NodeCache reads Nodes without an API call per read (the kube subnet manager's informer implements it).
type NodeCache interface {
	Node(ctx context.Context, name string) (n *corev1.Node, ok bool, err error)
}

// Kube coordinates through the Kubernetes API: a coordination.k8s.io Lease named weft-<name> in Namespace, and
// each node's NetworkUnavailable condition (False/RouteCreated when routed, True with the reason when not) plus
// a Warning Event for a node left unrouted.
type Kube struct {
	Client    kubernetes.Interface
	Nodes     NodeCache
	Namespace string // of the election Lease: the pod's namespace, else kube-system
}

var _ Coordinator = (*Kube)(nil)

// Lead holds the election Lease; a dead leader's Lease expires after 15 s.
func (k *Kube) Lead(ctx context.Context, name, id string) (context.Context, error) {
	ns := k.Namespace
	if ns == "" {
		ns = "kube-system"
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: "weft-" + name, Namespace: ns},
		Client:     k.Client.CoordinationV1(),
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

// reasonRouteCreated is the reason of a routed node's condition, as Kubernetes' cloud route controller writes it.
const reasonRouteCreated = "RouteCreated"

// conditionPrefix starts the message of every NetworkUnavailable condition weft's leader writes, so a condition
// another controller wrote with the same reason is never read as weft's.
const conditionPrefix = "weft: "

func nodeName(l *subnet.Lease) (string, error) {
	if l.NodeName == "" {
		return "", errors.New("lease " + l.Key() + " names no Node")
	}
	return l.NodeName, nil
}

// Publish sets the node's NetworkUnavailable condition and records an Event for a node left unrouted.
func (k *Kube) Publish(ctx context.Context, l *subnet.Lease, st Status) error {
	name, err := nodeName(l)
	if err != nil {
		return err
	}
	now := metav1.Now()
	cond := corev1.NodeCondition{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionFalse, Reason: reasonRouteCreated,
		Message: conditionPrefix + "the VPC route of this node is Available", LastTransitionTime: now, LastHeartbeatTime: now}
	if !st.Routed {
		cond.Status, cond.Reason = corev1.ConditionTrue, st.Reason
		cond.Message = conditionPrefix + "this node has no Available VPC route: " + st.Reason
	}
	patch, _ := json.Marshal(map[string]any{"status": map[string]any{"conditions": []corev1.NodeCondition{cond}}})
	if _, err := k.Client.CoreV1().Nodes().PatchStatus(ctx, name, patch); err != nil {
		return fmt.Errorf("set NetworkUnavailable=%s on node %q: %w", cond.Status, name, err)
	}
	if st.Routed {
		return nil
	}
	uid := ""
	if n, ok, _ := k.Nodes.Node(ctx, name); ok {
		uid = string(n.UID)
	}
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{GenerateName: name + ".", Namespace: "default"},
		InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: name, UID: types.UID(uid), APIVersion: "v1"},
		Reason:         st.Reason, Message: cond.Message, Type: corev1.EventTypeWarning,
		Source: corev1.EventSource{Component: "weftd"}, FirstTimestamp: now, LastTimestamp: now, Count: 1,
	}
	if _, err := k.Client.CoreV1().Events("default").Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		klog.Warningf("event for node %s: %v", name, err)
	}
	return nil
}

// Forget has nothing to do: a lease is removed with its Node, and the condition goes with it.
func (k *Kube) Forget(context.Context, *subnet.Lease) error { return nil }

// Status reads the node's condition as published by the leader, from the node cache.
func (k *Kube) Status(ctx context.Context, l *subnet.Lease) (Status, bool, error) {
	name, err := nodeName(l)
	if err != nil {
		return Status{}, false, err
	}
	n, ok, err := k.Nodes.Node(ctx, name)
	if err != nil || !ok {
		return Status{}, false, err
	}
	for _, c := range n.Status.Conditions {
		if c.Type != corev1.NodeNetworkUnavailable || !strings.HasPrefix(c.Message, conditionPrefix) {
			continue
		}
		switch {
		case c.Reason == reasonRouteCreated && c.Status == corev1.ConditionFalse:
			return Status{Routed: true}, true, nil
		case c.Status == corev1.ConditionTrue && c.Reason != "":
			return Status{Reason: c.Reason}, true, nil
		}
	}
	return Status{}, false, nil
}
