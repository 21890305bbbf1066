package eni

// Dual stack (ip_stack "dual", Terway's key): every pod gets an IPv4 and an IPv6 address of the same shared ENI.
// The pool's unit stays the IPv4 address; each allocation is paired with an IPv6 address of its ENI, so an ENI
// carries at most min(EniPrivateIpAddressQuantity, EniIpv6AddressQuantity) pods and the node's capacity is
// (EniQuantity - 1) x that (pool.Limits.IPv6PerENI). This file holds the start-up checks that refuse dual stack
// where the cloud cannot give it, and the start-up reconcile's IPv6 part.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"k8s.io/klog/v2"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/internal/eni/checkpoint"
	"github.com/weftnet/weft/internal/eni/cniproto"
	"github.com/weftnet/weft/internal/eni/datapath"
	"github.com/weftnet/weft/internal/eni/pool"
	"github.com/weftnet/weft/internal/eni/reconcile"
)

// dualLimits checks that the instance type and the zone's vSwitches can carry dual-stack pods and returns the
// pool's limits with IPv6PerENI set. vsws are the vSwitches the node may put ENIs in (those of its zone).
// Refusals name the figure or the vSwitch and what was expected. In exclusive mode an ENI takes one IPv6 address
// (exclusive_dual.go), whatever the type allows beyond.
func dualLimits(l pool.Limits, t aliyun.InstanceType, vsws []aliyun.VSwitch) (pool.Limits, error) {
	if t.IPv6PerENI < 1 {
		return l, fmt.Errorf(`Backend.ip_stack: "dual": instance type %s has EniIpv6AddressQuantity %d: its ENIs take no IPv6 address; expected 1 or more (use ip_stack "ipv4" on this node)`, t.ID, t.IPv6PerENI)
	}
	if len(vsws) == 0 {
		return l, fmt.Errorf(`Backend.ip_stack: "dual": no vSwitch of this node's zone is known; expected at least one with an IPv6 CIDR`)
	}
	var without []string
	for _, v := range vsws {
		if !v.IPv6CIDR.IsValid() || !v.IPv6CIDR.Addr().Is6() || v.IPv6CIDR.Addr().Is4In6() {
			without = append(without, v.ID)
		}
	}
	if len(without) > 0 {
		return l, fmt.Errorf(`Backend.ip_stack: "dual": vSwitch %s has no IPv6 CIDR: expected every vSwitch of the node's zone to have one (enable IPv6 on the VPC and the vSwitch, or use ip_stack "ipv4")`, strings.Join(without, ", "))
	}
	l.IPv6PerENI = t.IPv6PerENI
	if l.Exclusive {
		l.IPv6PerENI = exclusiveIPv6PerENI
	}
	return l, nil
}

// applyDual sets the node's limits for dual stack when ip_stack is "dual" (after refreshVSwitches, which knows the
// zone's vSwitches); with "ipv4" it changes nothing.
func (n *Network) applyDual(t aliyun.InstanceType) error {
	if n.cfg.IPStack != IPStackDual {
		return nil
	}
	n.mu.Lock()
	var vsws []aliyun.VSwitch
	for _, id := range n.cfg.VSwitchesFor(n.zone) {
		vsws = append(vsws, n.vswitches[id])
	}
	n.mu.Unlock()
	l, err := dualLimits(n.limits, t, vsws)
	if err != nil {
		return err
	}
	n.limits = l
	return nil
}

// setUpIPv6 readies an ENI's table for dual-stack pods (after EnsureENI): default via the vSwitch's IPv6 gateway
// dev ENI. Nothing when IPv4 only.
func (n *Network) setUpIPv6(ctx context.Context, st *eniState, sw aliyun.VSwitch, ifindex int) error {
	if n.limits.IPv6PerENI == 0 {
		return nil
	}
	gw := n.gateway6(ctx, st.MAC, sw.IPv6CIDR)
	if !gw.IsValid() {
		return fmt.Errorf("its vSwitch %s has no IPv6 gateway (IPv6 CIDR %v)", sw.ID, sw.IPv6CIDR)
	}
	table := datapath.TableFor(n.cfg.RouteTableBase, ifindex)
	if err := n.d.host.EnsureENIIPv6(ifindex, table, gw, sw.IPv6CIDR); err != nil {
		return err
	}
	n.mu.Lock()
	st.gateway6, st.cidr6 = gw, sw.IPv6CIDR.Masked()
	n.mu.Unlock()
	return nil
}

// gateway6 is the vSwitch's IPv6 gateway of an ENI: from the metadata (per MAC, ipv6-gateway), else the block's
// first host address (::1), where alisim's router and the VPC put it.
func (n *Network) gateway6(ctx context.Context, mac string, cidr netip.Prefix) netip.Addr {
	if v, err := n.d.meta.Get(ctx, "network/interfaces/macs/"+mac+"/ipv6-gateway"); err == nil {
		if a, err := netip.ParseAddr(strings.TrimSpace(v)); err == nil && a.Is6() && !a.Is4In6() {
			return a
		}
	}
	if !cidr.IsValid() || !cidr.Addr().Is6() || cidr.Addr().Is4In6() {
		return netip.Addr{}
	}
	return cidr.Masked().Addr().Next()
}

// executeIPv6 carries out the dual-stack part of a plan: IPv6 addresses assigned to ENIs whose IPv4 addresses
// have no partner, surplus ones released.
func (n *Network) executeIPv6(ctx context.Context, p pool.Plan) (acted bool, err error) {
	var errs []error
	for _, a := range p.AssignIPv6 {
		ips, err := n.d.cloud.AssignIPv6(ctx, a.ENI, a.N)
		n.cloudResult("AssignIpv6Addresses", err)
		if err != nil {
			errs = append(errs, fmt.Errorf("assign %d IPv6 addresses to %s: %w", a.N, a.ENI, err))
			continue
		}
		n.d.m.calls.WithLabelValues("AssignIpv6Addresses").Inc()
		n.pool.AssignedIPv6(a.ENI, ips)
		acted = true
	}
	for _, u := range p.UnassignIPv6 {
		if err := n.pool.BeginUnassignIPv6(u); err != nil {
			continue // stale: an address was paired meanwhile
		}
		err := n.d.cloud.UnassignIPv6(ctx, u.ENI, u.IPs)
		n.cloudResult("UnassignIpv6Addresses", err)
		n.pool.UnassignedIPv6(u.ENI, u.IPs, err)
		if err != nil {
			errs = append(errs, fmt.Errorf("release %d IPv6 addresses of %s: %w", len(u.IPs), u.ENI, err))
			continue
		}
		n.d.m.calls.WithLabelValues("UnassignIpv6Addresses").Inc()
		acted = true
	}
	return acted, errors.Join(errs...)
}

// dualReply adds the pod's IPv6 address, the vSwitch's IPv6 block and gateway to an ADD reply. A dual-stack
// allocation on an ENI whose IPv6 side is not set up is NotReady (retried), never an IPv4-only answer.
func dualReply(r *cniproto.AddReply, a pool.Allocation, e *eniState) error {
	if !a.IPv6.IsValid() {
		return nil
	}
	if !e.gateway6.IsValid() || !e.cidr6.IsValid() {
		return protoErr("NotReady", "ENI %s of address %s/%s has no IPv6 gateway set up yet", e.ID, a.IP, a.IPv6)
	}
	r.IPv6, r.ENI.IPv6Gateway, r.ENI.VSwitchIPv6CIDR = a.IPv6, e.gateway6, e.cidr6
	return nil
}

// reconcileIPv6 is the start-up reconcile's IPv6 part (reconcile.ReconcileIPv6): the records' IPv6 partners
// against the cloud's ENIs and the host's /128 routes. Nothing on an IPv4-only node.
func (n *Network) reconcileIPv6(out reconcile.Outcome, enis []aliyun.ENI) (reconcile.Outcome, error) {
	if n.limits.IPv6PerENI == 0 {
		return out, nil
	}
	pods, err := n.d.host.ObservePods6()
	if err != nil {
		return out, fmt.Errorf("eni: read the host's IPv6 pod routes: %w", err)
	}
	t := reconcile.Truths6{Cloud: map[string][]netip.Addr{}}
	for _, e := range enis {
		t.Cloud[e.ID] = e.IPv6
	}
	for _, p := range pods {
		t.Host = append(t.Host, reconcile.HostPod{Veth: p.Veth, IP: p.IP})
	}
	return reconcile.ReconcileIPv6(out, t, datapath.HostVethName), nil
}

// logDualStart is the start-up line of a dual-stack node: its capacity with the IPv6 figure, and how many pods
// hold an IPv6 address beside their IPv4 one (the checkpoint's pairs the reconcile kept).
func (n *Network) logDualStart(enis, v4PerENI int, st pool.Stats) {
	paired := 0
	for _, r := range n.pool.Records() {
		if r.State == checkpoint.Assigned && r.IPv6.IsValid() {
			paired++
		}
	}
	klog.Infof("eni: instance %s (%s, zone %s): dual stack: up to %d pods ((%d ENIs - the primary) x min(%d IPv4, %d IPv6 addresses)); %d ENIs, %d addresses in use (%d with IPv6), %d idle, %d cooling down, %d quarantined, %d reserved",
		n.instance, n.itype, n.zone, n.limits.Pods(), enis, v4PerENI, n.limits.IPv6PerENI, st.ENIs, st.Assigned, paired, st.Idle, st.Cooldown, st.Quarantined, st.Reserved)
}
