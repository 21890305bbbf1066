package backend

import (
	"context"
	"time"

	"k8s.io/klog/v2"

	"github.com/weftnet/weft/subnet"
)

// Peers is the desired state every overlay backend derives from: the other nodes' leases, by key.
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
				l := ev.Lease
				if l.Key() == own.Key() || !keep(l) {
					continue
				}
				switch ev.Type {
				case subnet.EventAdded:
					if _, known := peers[l.Key()]; !known {
						klog.Infof("%s: peer %s at %v/%v added", name, l.Key(), l.Attrs.PublicIP, l.Attrs.PublicIPv6)
					}
					peers[l.Key()] = l
				case subnet.EventRemoved:
					klog.Infof("%s: peer %s removed", name, l.Key())
					delete(peers, l.Key())
				}
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
