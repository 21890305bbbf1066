package eni

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/weftnet/weft/cloud/aliyun"
)

// The agent's states (a vSwitch exhausted, the instance's ENI limit) and the cloud API's health (degraded mode).

// markExhausted takes a vSwitch out of selection for a while and says so on the node.
func (n *Network) markExhausted(ctx context.Context, sw string, cause error) {
	if sw == "" {
		return
	}
	n.mu.Lock()
	n.exhausted[sw] = time.Now().Add(exhaustedFor)
	left := 0
	for _, id := range n.cfg.VSwitchesFor(n.zone) {
		if !time.Now().Before(n.exhausted[id]) {
			left++
		}
	}
	n.mu.Unlock()
	msg := fmt.Sprintf("vSwitch %s has no free addresses (%v); %d other vSwitches of zone %s left to fail over to", sw, cause, left, n.zone)
	if left == 0 {
		all := n.cfg.VSwitchesFor(n.zone)
		msg = fmt.Sprintf("no vSwitch of zone %s has free addresses (%d configured: %s; %s was the last tried: %v): free addresses in them or configure another vSwitch",
			n.zone, len(all), strings.Join(all, ", "), sw, cause)
	}
	klog.Warning("eni: " + msg)
	n.d.events.Eventf("Warning", "VSwitchExhausted", "%s", msg)
	n.setState(ctx, "VSwitchExhausted", msg)
}

// setState records a condition the node is in (cleared by a successful allocation path in statusLoop).
func (n *Network) setState(_ context.Context, state, msg string) {
	n.mu.Lock()
	n.state, n.stateMsg = state, msg
	n.mu.Unlock()
}

// cloudResult tracks the API's health: three failures in a row (other than a vSwitch running out, which is a
// state, not an outage) put the pool in degraded mode, where it releases nothing; a success ends it.
func (n *Network) cloudResult(action string, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err == nil {
		n.cloudErr, n.cloudFail = "", 0
		if n.pool != nil {
			n.pool.SetDegraded(false, "")
		}
		return
	}
	if aliyun.IsVSwitchExhausted(err) || aliyun.IsENILimit(err) || errors.Is(err, context.Canceled) {
		return
	}
	n.cloudFail++
	n.cloudErr = fmt.Sprintf("%s: %v", action, err)
	n.d.m.errors.WithLabelValues(action).Inc()
	if n.cloudFail >= 3 && n.pool != nil {
		n.pool.SetDegraded(true, n.cloudErr)
	}
}
