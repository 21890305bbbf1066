package eni

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"k8s.io/klog/v2"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/internal/eni/reconcile"
)

// The node's status in the Kubernetes API: NetworkUnavailable and WeftENIExhausted.

// statusLoop publishes readiness to the node's NetworkUnavailable condition when it changes.
func (n *Network) statusLoop(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		ok, why := n.Ready()
		key := fmt.Sprint(ok, why)
		n.mu.Lock()
		changed := key != n.published
		n.mu.Unlock()
		if changed && n.d.deps.SetNodeNetworkUnavailable {
			reason := "WeftENIReady"
			if !ok {
				reason = "WeftENINotReady"
				n.mu.Lock()
				if n.state != "" {
					reason = n.state
				}
				n.mu.Unlock()
			}
			if err := n.d.status.SetNetworkReady(ctx, ok, reason, why); err != nil {
				klog.Warningf("eni: node condition: %v", err)
			} else {
				n.mu.Lock()
				n.published = key
				n.mu.Unlock()
			}
		}
		n.publishExhausted(ctx)
		n.d.m.setPool(n.pool.Stats())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// publishExhausted writes the node's WeftENIExhausted condition when the agent's state changes.
func (n *Network) publishExhausted(ctx context.Context) {
	n.mu.Lock()
	state, msg, last := n.state, n.stateMsg, n.publishedState
	n.mu.Unlock()
	key := state + "\x00" + msg
	if key == last {
		return
	}
	if err := n.d.status.SetExhausted(ctx, state != "", state, msg); err != nil {
		klog.Warningf("eni: node condition %s: %v", ConditionExhausted, err)
		return
	}
	n.mu.Lock()
	n.publishedState = key
	n.mu.Unlock()
}

// cloudView is an ENI as the reconcile sees it.
func cloudView(e aliyun.ENI) reconcile.CloudENI {
	return reconcile.CloudENI{ID: e.ID, MAC: e.MAC, Status: e.Status, InstanceID: e.InstanceID,
		Addrs: append([]netip.Addr{e.PrimaryIP}, e.Secondary...), Tags: e.Tags, Type: e.Type}
}
