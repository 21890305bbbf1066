package eni

import (
	"context"
	"time"

	"k8s.io/klog/v2"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/internal/eni/datapath"
	"github.com/weftnet/weft/internal/eni/reconcile"
)

// gcEvery is how often addresses held for pods that no longer exist are looked for.
const gcEvery = time.Minute

// gcLoop releases addresses whose pod is gone from the API (or terminated) and has no datapath on the host: the
// DEL that should have released them never came (a crash, a runtime that lost the pod). Nothing is collected
// before the pod informer has listed the node's pods, nor while this node is being drained or deleted.
func (n *Network) gcLoop(ctx context.Context) {
	t := time.NewTicker(gcEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n.collectOrphans()
	}
}

func (n *Network) collectOrphans() {
	if !n.d.pods.Synced() {
		return
	}
	if st, ok := n.d.nodes.States()[n.d.deps.NodeName]; ok && (st.Deleting || st.Unschedulable) {
		return
	}
	obs, err := n.d.host.Observe()
	if err != nil {
		klog.Warningf("eni: GC: read the host: %v", err)
		return
	}
	veths := map[string]bool{}
	for _, p := range obs.Pods {
		veths[p.Veth] = true
	}
	for _, r := range reconcile.Orphans(n.pool.Records(), n.d.pods.Live(), veths, datapath.HostVethName, n.d.clock.Now(), gcMinAge) {
		if _, ok, err := n.pool.Release(r.ContainerID, r.IfName); err != nil {
			klog.Warningf("eni: GC: release %s: %v", r.IP, err)
		} else if ok && r.Reserve && n.cfg.IPReservationTTL > 0 {
			// A fixed address (reserve.go): released into its reservation, kept for the pod's return.
			klog.Infof("eni: GC: %s of %s/%s (container %s) is kept for the pod for %s: the pod is gone and has no datapath on this node", r.IP, r.PodNamespace, r.PodName, short(r.ContainerID), n.cfg.IPReservationTTL)
		} else if ok {
			klog.Infof("eni: GC: released %s held for %s/%s (container %s): the pod is gone and has no datapath on this node", r.IP, r.PodNamespace, r.PodName, short(r.ContainerID))
			n.d.m.gcReleased.Inc()
		}
	}
}

// eniGCEvery is how often the elected node looks for this cluster's detached ENIs.
const eniGCEvery = time.Minute

// eniGCLoop runs on the node elected for it: ENIs carrying this cluster's tag that stay detached (Available)
// for the grace period are deleted, unless their node is being drained or deleted (it may still come back for
// them). ENIs without the tag are never touched.
func (n *Network) eniGCLoop(ctx context.Context) {
	for ctx.Err() == nil {
		lctx, err := n.d.deps.Coordinator.Lead(ctx, "eni-gc", n.d.deps.NodeName)
		if err != nil {
			if ctx.Err() == nil {
				klog.Warningf("eni: ENI collector election: %v", err)
				select {
				case <-ctx.Done():
				case <-time.After(10 * time.Second):
				}
			}
			continue
		}
		klog.Info("eni: this node collects the cluster's detached ENIs")
		n.collectENIs(lctx)
	}
}

func (n *Network) collectENIs(ctx context.Context) {
	since := map[string]time.Time{} // first seen Available, by this leader (a new leader starts the clock again)
	t := time.NewTicker(eniGCEvery)
	defer t.Stop()
	for {
		n.collectENIsOnce(ctx, since)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (n *Network) collectENIsOnce(ctx context.Context, since map[string]time.Time) {
	if !n.d.nodes.Synced() {
		return // before the first list every node would read as gone
	}
	list, err := n.d.cloud.ENIs(ctx, aliyun.ENIFilter{Tags: map[string]string{TagCluster: n.cfg.ClusterID}, Status: "Available"})
	n.cloudResult("DescribeNetworkInterfaces", err)
	if err != nil {
		klog.Warningf("eni: list detached ENIs: %v", err)
		return
	}
	now := n.d.clock.Now()
	var views []reconcile.CloudENI
	seen := map[string]bool{}
	for _, e := range list {
		views = append(views, cloudView(e))
		seen[e.ID] = true
		if _, ok := since[e.ID]; !ok {
			since[e.ID] = now
		}
	}
	for id := range since {
		if !seen[id] {
			delete(since, id)
		}
	}
	for _, id := range reconcile.DeletableENIs(views, since, n.d.nodes.States(), TagCluster, n.cfg.ClusterID, TagNode, now, n.cfg.ENIGCGrace) {
		err := n.d.cloud.DeleteENI(ctx, id)
		n.cloudResult("DeleteNetworkInterface", err)
		if err != nil {
			klog.Warningf("eni: delete detached ENI %s: %v", id, err)
			continue
		}
		klog.Infof("eni: deleted %s, this cluster's and detached for more than %s", id, n.cfg.ENIGCGrace)
		n.d.events.Eventf("Normal", "ENIDeleted", "deleted ENI %s: detached for more than %s", id, n.cfg.ENIGCGrace)
		delete(since, id)
	}
}
