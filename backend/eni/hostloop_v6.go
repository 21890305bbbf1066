package eni

// The host loop's IPv6 side (dual stack): each usable ENI's table keeps its IPv6 routes (the vSwitch's IPv6 block
// and the default via its IPv6 gateway: EnsureENIIPv6 replaces what drifted) and the IPv6 pod rules are exactly
// those of the pool's dual-stack records (a stray IPv6 rule at weft's two priorities goes), as hostloop.go does
// for IPv4. Nothing is done on an IPv4-only node (the kernel may have no IPv6 at all).

import (
	"fmt"
	"net/netip"

	"github.com/weftnet/weft/internal/eni/checkpoint"
)

// eniV6 is what an ENI's table needs for IPv6.
type eniV6 struct {
	gateway netip.Addr
	cidr    netip.Prefix
	table   int
}

// repairENIv6 restores the IPv6 routes of ENI id's table (after EnsureENI gave its ifindex); none for an ENI not
// set up for IPv6.
func (n *Network) repairENIv6(id string, ifindex int, v6 map[string]eniV6) []error {
	e, ok := v6[id]
	if !ok || n.limits.IPv6PerENI == 0 {
		return nil
	}
	if err := n.d.host.EnsureENIIPv6(ifindex, e.table, e.gateway, e.cidr); err != nil {
		return []error{fmt.Errorf("ENI %s: %w", id, err)}
	}
	return nil
}

// syncRules6 makes the host's IPv6 pod rules those of the dual-stack Assigned records, on their ENIs' tables. A
// record younger than gcMinAge whose IPv6 rule the plugin has not added yet is left to the plugin (as for IPv4).
func (n *Network) syncRules6(records []checkpoint.Record, tables map[string]int) error {
	if n.limits.IPv6PerENI == 0 {
		return nil
	}
	now := n.d.clock.Now()
	var present map[netip.Addr]bool
	if anyYoung(records, now, ipv6Of) {
		obs, err := n.d.host.ObserveRules6()
		if err != nil {
			return err // nothing removed on a partial view
		}
		present = ruleAddrs(obs)
	}
	return n.d.host.SyncRules6(wantRules(records, tables, now, present, ipv6Of))
}
