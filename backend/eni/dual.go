package eni

// Dual stack (ip_stack "dual", Terway's key): every pod gets an IPv4 and an IPv6 address of the same shared ENI.
// The pool's unit stays the IPv4 address; each allocation is paired with an IPv6 address of its ENI, so an ENI
// carries at most min(EniPrivateIpAddressQuantity, EniIpv6AddressQuantity) pods and the node's capacity is
// (EniQuantity - 1) x that (pool.Limits.IPv6PerENI). This file holds the start-up checks that refuse dual stack
// where the cloud cannot give it.

import (
	"fmt"
	"strings"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/internal/eni/pool"
)

// dualLimits checks that the instance type and the zone's vSwitches can carry dual-stack pods and returns the
// pool's limits with IPv6PerENI set. vsws are the vSwitches the node may put ENIs in (those of its zone).
// Refusals name the figure or the vSwitch and what was expected; exclusive mode with dual stack is refused (not
// built yet).
func dualLimits(l pool.Limits, t aliyun.InstanceType, vsws []aliyun.VSwitch) (pool.Limits, error) {
	if l.Exclusive {
		return l, fmt.Errorf(`Backend.ip_stack: "dual" with exclusive ENI mode: not supported yet by weft's eni backend; use "ipv4" or the shared mode`)
	}
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
	return l, nil
}

// dualServed says whether the ADD path hands out IPv6 addresses; until it does, a node with ip_stack "dual"
// refuses to start rather than serve IPv4-only pods under a dual-stack configuration.
const dualServed = false

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
	if !dualServed {
		return fmt.Errorf(`Backend.ip_stack: "dual": the instance type and vSwitches allow it, but weftd does not yet hand IPv6 addresses to pods (the pool pairing and the plugin's IPv6 datapath are not wired); use "ipv4"`)
	}
	n.limits = l
	return nil
}
