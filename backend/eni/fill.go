package eni

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/internal/backoff"
	"github.com/weftnet/weft/internal/eni/pool"
)

// The fill loop: the pool's plan carried out in the cloud (addresses assigned and released, ENIs created and attached).

// poolSync is how often the agent re-reads its ENIs from the cloud without a reason (Terway's
// ip_pool_sync_period is 120 s).
const poolSync = 2 * time.Minute

// fillLoop acts on the pool's plan: addresses assigned in batches, ENIs created and attached, idle addresses
// released. It refreshes its view of the cloud after its own changes and every poolSync; a failed call backs off.
func (n *Network) fillLoop(ctx context.Context) {
	resync := time.NewTicker(poolSync)
	defer resync.Stop()
	b := backoff.Backoff{Min: time.Second, Max: 30 * time.Second}
	// settling paces the re-reads while one of the node's ENIs is not usable yet (attached but not yet on the
	// host, its metadata lagging): soon at first, then less often.
	settling := backoff.Backoff{Min: 500 * time.Millisecond, Max: 30 * time.Second}
	var settleAt time.Time
	for {
		changed := n.pool.Changed()
		plan := n.pool.Plan()
		acted, err := n.execute(ctx, plan)
		if ctx.Err() != nil {
			return
		}
		if acted || err != nil {
			if rerr := n.refresh(ctx); rerr != nil && err == nil {
				err = rerr
			}
		}
		var wait <-chan time.Time
		if err != nil {
			klog.Warningf("eni: pool: %v", err)
			if b.Wait(ctx) != nil {
				return
			}
			continue
		}
		b.Reset()
		if acted {
			continue // see whether the plan is complete
		}
		if !plan.NextCheck.IsZero() {
			wait = time.After(max(time.Until(plan.NextCheck), 10*time.Millisecond))
		}
		// One look is due at a time: waking for another reason (a pod waiting, the pool changing) keeps the
		// look already scheduled instead of backing off further.
		var settle <-chan time.Time
		if why := n.unsettled(); why != "" {
			if settleAt.IsZero() {
				d := settling.Next()
				settleAt = time.Now().Add(d)
				klog.V(2).Infof("eni: %s; looking again in %s", why, d.Round(time.Millisecond))
			}
			settle = time.After(max(time.Until(settleAt), 0))
		} else {
			settling.Reset()
			settleAt = time.Time{}
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-n.kick:
		case <-wait:
		case <-settle:
			settleAt = time.Time{}
			if err := n.refresh(ctx); err != nil {
				klog.Warningf("eni: pool sync: %v", err)
			}
		case <-resync.C:
			if err := n.refresh(ctx); err != nil {
				klog.Warningf("eni: pool sync: %v", err)
			}
		}
	}
}

// unsettled says which of the node's ENIs is not usable yet and why ("" when all are).
func (n *Network) unsettled() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	for id, e := range n.enis {
		if !e.usable {
			return fmt.Sprintf("%s is not usable yet: %s", id, e.why)
		}
	}
	return ""
}

// execute carries out one plan; acted says whether anything changed in the cloud.
func (n *Network) execute(ctx context.Context, p pool.Plan) (acted bool, err error) {
	var errs []error
	for _, a := range p.Assign {
		ips, err := n.d.cloud.AssignIPs(ctx, a.ENI, a.N)
		n.cloudResult("AssignPrivateIpAddresses", err)
		if err != nil {
			if aliyun.IsVSwitchExhausted(err) {
				n.markExhausted(ctx, n.vswitchOf(a.ENI), err)
			}
			errs = append(errs, fmt.Errorf("assign %d addresses to %s: %w", a.N, a.ENI, err))
			continue
		}
		n.d.m.calls.WithLabelValues("AssignPrivateIpAddresses").Inc()
		n.pool.Assigned(a.ENI, ips)
		n.setState(ctx, "", "")
		acted = true
	}
	if p.CreateENI > 0 || p.CreateWhole { // CreateWhole: exclusive mode, no secondary address
		ok, err := n.createENI(ctx, p.CreateENI, p.Class)
		acted = acted || ok
		if err != nil {
			errs = append(errs, err)
		}
	}
	if ok, err := n.executeIPv6(ctx, p); ok || err != nil { // dual.go
		acted = acted || ok
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, u := range p.Unassign {
		if err := n.pool.BeginUnassign(u); err != nil {
			continue // the plan went stale (an address was taken meanwhile)
		}
		err := n.d.cloud.UnassignIPs(ctx, u.ENI, u.IPs)
		n.cloudResult("UnassignPrivateIpAddresses", err)
		n.pool.Unassigned(u.ENI, u.IPs, err)
		if err != nil {
			errs = append(errs, fmt.Errorf("release %d idle addresses of %s: %w", len(u.IPs), u.ENI, err))
			continue
		}
		klog.V(2).Infof("eni: released %d idle addresses of %s: %v", len(u.IPs), u.ENI, u.IPs)
		acted = true
	}
	return acted, errors.Join(errs...)
}

// createENI creates one ENI in the first usable vSwitch of the node's zone (policy order), attaches it and waits
// until it is InUse and on the host. An ENI that cannot be attached is deleted again; one left behind by a crash
// is adopted by refresh (it carries this instance's tag) or deleted by the cluster's ENI collector.
func (n *Network) createENI(ctx context.Context, secondary int, class *pool.Class) (bool, error) {
	list, sgs := n.newENIFor(class) // podnet.go
	n.mu.Lock()
	limited := time.Now().Before(n.eniLimitUntil)
	n.mu.Unlock()
	if limited {
		return false, fmt.Errorf("the instance refused another ENI; not trying again before %s", n.eniLimitUntil.Format(time.RFC3339))
	}
	candidates := n.candidateVSwitches(list)
	if len(candidates) == 0 {
		// All are marked exhausted: the VPC may have freed addresses since (an ENI of another node deleted, a
		// vSwitch's reservations given back). DescribeVSwitches says, at the fill loop's backoff, so that the
		// node recovers as soon as there is room rather than after the mark runs out.
		if err := n.refreshVSwitches(ctx); err != nil {
			return false, err
		}
		candidates = n.refilled(secondary+1, list)
	}
	if len(candidates) == 0 {
		return false, fmt.Errorf("no vSwitch of zone %s has free addresses (all %d configured are exhausted: %s)", n.zone, len(list), strings.Join(list, ", "))
	}
	if n.trunking { // trunk.go: the trunk ENI before the first member
		n.mu.Lock()
		ordinary, members, trunk := n.slots()
		n.mu.Unlock()
		slot, err := nextSlot(n.limits, true, ordinary, members, trunk != nil)
		if err != nil {
			return false, err
		}
		if slot == slotTrunk {
			_, err := n.createTrunk(ctx)
			return err == nil, err
		}
	}
	tags := n.eniTags()
	var errs []error
	for _, sw := range candidates {
		e, err := n.d.cloud.CreateENI(ctx, aliyun.NewENI{VSwitchID: sw, SecurityGroupIDs: sgs,
			SecondaryIPs: secondary, IPv6: n.limits.NewENIIPv6(secondary), Tags: tags, Description: "weft pod addresses of node " + n.d.deps.NodeName})
		n.cloudResult("CreateNetworkInterface", err)
		if err != nil {
			if aliyun.IsVSwitchExhausted(err) {
				n.markExhausted(ctx, sw, err)
				errs = append(errs, err)
				continue // fail over to the next vSwitch
			}
			return false, fmt.Errorf("create an ENI in %s: %w", sw, err)
		}
		n.d.m.calls.WithLabelValues("CreateNetworkInterface").Inc()
		klog.Infof("eni: created %s (%s, %d secondary addresses) in %s, security groups %v", e.ID, e.MAC, len(e.Secondary), sw, sgs)
		if err := n.attachSlot(ctx, e.ID); err != nil { // trunk.go: ordinary or a trunk member
			return true, err
		}
		n.setState(ctx, "", "")
		return true, nil
	}
	return false, fmt.Errorf("create an ENI: %w", errors.Join(errs...))
}

// eniTags are the tags of every ENI weftd creates.
func (n *Network) eniTags() map[string]string {
	tags := map[string]string{TagCluster: n.cfg.ClusterID, TagNode: n.d.deps.NodeName, TagInstance: n.instance, TagCreatedBy: "weftd"}
	for k, v := range n.cfg.ENITags {
		tags[k] = v
	}
	return tags
}

// attach attaches an Available ENI of this node and waits (at most a minute) until the API says InUse.
func (n *Network) attach(ctx context.Context, id string) error {
	err := n.d.cloud.AttachENI(ctx, n.instance, id)
	n.cloudResult("AttachNetworkInterface", err)
	if err != nil {
		if aliyun.IsENILimit(err) {
			n.mu.Lock()
			n.eniLimitUntil = time.Now().Add(exhaustedFor)
			n.mu.Unlock()
			n.d.events.Eventf("Warning", "ENILimitExceeded", "instance %s (%s) refused another ENI: %v", n.instance, n.itype, err)
			n.setState(ctx, "ENILimitExceeded", fmt.Sprintf("the instance cannot take another ENI (%s allows %d): %v", n.itype, n.limits.ENIs+1, err))
		}
		if derr := n.d.cloud.DeleteENI(ctx, id); derr != nil {
			klog.Warningf("eni: delete %s after its failed attach: %v (the ENI collector removes it later)", id, derr)
		}
		return fmt.Errorf("attach %s: %w", id, err)
	}
	n.d.m.calls.WithLabelValues("AttachNetworkInterface").Inc()
	return n.waitInUse(ctx, id) // trunk.go
}
