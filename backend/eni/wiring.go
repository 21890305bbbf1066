package eni

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
)

// kubeSeams builds the Kubernetes side of the agent once per backend (RegisterNetwork is retried; its informers
// must not be started again): node status, Events, this node's pods and all nodes, with the informers listed.
func (b *eniBackend) kubeSeams(ctx context.Context, d *agentDeps) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	cs, node := b.deps.Kube, b.deps.NodeName
	if b.status == nil {
		b.status, b.events = NewNodeStatus(cs, node), NewEvents(cs, node)
	}
	if b.pods == nil {
		p := NewPods(cs, node)
		p.Start(ctx)
		b.pods = p
	}
	if err := b.pods.WaitForSync(ctx); err != nil {
		return fmt.Errorf("eni: %w", err)
	}
	if b.nodes == nil {
		nd := NewNodes(cs)
		nd.Start(ctx)
		b.nodes = nd
	}
	if err := b.nodes.WaitForSync(ctx); err != nil {
		return fmt.Errorf("eni: %w", err)
	}
	d.status, d.events, d.pods, d.nodes = b.status, b.events, b.pods, b.nodes
	d.sts = KubeStatefulSets{Client: cs}
	d.namespaces = newCachedNamespaces(KubeNamespaces{Client: cs}, d.clock) // podnet.go, nscache.go
	return nil
}

// clusterID is Backend.cluster_id, else the kube-system namespace's UID: unique per cluster and stable for its
// life, so two clusters in one VPC never take each other's ENIs for their own.
func clusterID(ctx context.Context, d agentDeps) (string, error) {
	if d.cfg.ClusterID != "" {
		return d.cfg.ClusterID, nil
	}
	ns, err := d.deps.Kube.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("eni: Backend.cluster_id is not set and the kube-system namespace (whose UID is the default) cannot be read: %w", err)
	}
	klog.Infof("eni: cluster id %s (the kube-system namespace's UID; set Backend.cluster_id to choose another)", ns.UID)
	return string(ns.UID), nil
}
