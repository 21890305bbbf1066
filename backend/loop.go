package backend

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"k8s.io/klog/v2"

	"github.com/weftnet/weft/subnet"
)

// Peers is the desired state every overlay backend derives from: the other nodes' leases, by node (Lease.Node),
// so a node whose subnet changed is one peer, not two.
type Peers map[string]subnet.Lease

// RunLoop drives a backend's reconcile: it watches all leases (ignoring own, and any lease keep rejects),
// and calls reconcile with the full set of peers after every event batch and every resync period. reconcile must
// be idempotent: it computes the difference between the peers and the kernel and applies only that.
func RunLoop(ctx context.Context, name string, deps Deps, own *subnet.Lease, keep func(subnet.Lease) bool,
	reconcile func(Peers) error) {
	events := make(chan []subnet.Event, 64)
	go func() {
		if err := deps.SubnetManager.WatchLeases(ctx, events); err != nil && ctx.Err() == nil {
			klog.Errorf("%s: watching leases ended: %v", name, err)
		}
	}()
	period := deps.Resync
	if period <= 0 {
		period = DefaultResync
	}
	tick := time.NewTicker(period)
	defer tick.Stop()
	peers := Peers{}
	synced := false
	run := func(why string) {
		start := time.Now()
		err := reconcile(peers)
		secs := time.Since(start).Seconds()
		if deps.Hooks != nil {
			deps.Hooks.Reconciled(name, secs, err)
		}
		if err != nil {
			klog.Errorf("%s reconcile (%s): %v", name, why, err)
		} else {
			klog.V(2).Infof("%s reconcile (%s): %d peers in %.1fms", name, why, len(peers), secs*1000)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case batch := <-events:
			for _, ev := range batch {
				peers.Apply(name, ev, own, keep)
			}
			synced = true
			run("event")
		case <-tick.C:
			if synced {
				run("resync")
			}
		}
	}
}

// Apply folds one lease event into peers, skipping this node's own lease (own may be nil) and leases keep
// rejects; name is the backend, for logs. A removal deletes the node's peer only if it is still the removed
// lease: a node that took a new subnet before its old lease expired keeps its new one. In etcd mode a lease
// that names another node than the one holding its key before ends the earlier holder's peer. A lease whose
// subnet overlaps this node's own (a store written by hand, or a dual-stack key that repeats this node's IPv4
// subnet beside another IPv6 one) is refused with a warning: routing this node's own pods to another node would
// cut them off, and the kernel refuses the route anyway.
func (peers Peers) Apply(name string, ev subnet.Event, own *subnet.Lease, keep func(subnet.Lease) bool) {
	l := ev.Lease
	id := l.Node()
	if (own != nil && (id == own.Node() || l.Key() == own.Key())) || !keep(l) {
		return
	}
	switch ev.Type {
	case subnet.EventAdded:
		if what := overlapsOwn(l, own); what != "" {
			klog.Warningf("%s: peer %s (%s) ignored: %s", name, id, l.Key(), what)
			if old, known := peers[id]; known && old.Key() != l.Key() {
				delete(peers, id) // it no longer holds the subnet it had
			}
			return
		}
		if old, known := peers[id]; !known {
			klog.Infof("%s: peer %s (%s) at %v/%v added", name, id, l.Key(), l.Attrs.PublicIP, l.Attrs.PublicIPv6)
		} else if old.Key() != l.Key() {
			klog.Infof("%s: peer %s moved from %s to %s", name, id, old.Key(), l.Key())
		}
		peers[id] = l
		if l.NodeName == "" && (l.Subnet.IsValid() || l.IPv6Subnet.IsValid()) {
			// etcd mode: a key has one value, so the subnet is no longer held by the node that had it before
			// (whose expiry or deletion went unseen, e.g. across a re-listing): that node must not keep its routes.
			for other, ol := range peers {
				if other != id && ol.Key() == l.Key() {
					klog.Infof("%s: peer %s (%s) replaced by %s", name, other, ol.Key(), id)
					delete(peers, other)
				}
			}
		}
	case subnet.EventRemoved:
		if old, known := peers[id]; known && old.Key() == l.Key() {
			klog.Infof("%s: peer %s (%s) removed", name, id, l.Key())
			delete(peers, id)
		}
	}
}

// overlapsOwn says how lease l's subnets overlap this node's own lease's ("" when they do not).
func overlapsOwn(l subnet.Lease, own *subnet.Lease) string {
	if own == nil {
		return ""
	}
	for _, p := range [][2]netip.Prefix{{l.Subnet, own.Subnet}, {l.IPv6Subnet, own.IPv6Subnet}} {
		if p[0].IsValid() && p[1].IsValid() && p[0].Overlaps(p[1]) {
			return fmt.Sprintf("its subnet %v overlaps this node's own %v", p[0], p[1])
		}
	}
	return ""
}
