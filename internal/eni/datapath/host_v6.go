package datapath

// weftd's side of dual stack on the host: the IPv6 pod rules kept as the pool's records say (SyncRules6, the
// IPv6 twin of SyncRules: stray rules at the two priorities go, missing ones come back) and observed for the
// start-up reconcile and the host loop (ObserveRules6, ObservePods6). EnsureENIIPv6 (ipv6.go) repairs an ENI table's IPv6
// routes.

import (
	"fmt"
	"net/netip"
	"sort"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// SyncRules6 makes the IPv6 rules at exactly Rules.ToPod and Rules.FromPod those of want, as SyncRules does for
// IPv4 ("to IP/128 lookup main", "from IP/128 lookup Table", the rules of an address in hold left alone); IPv4
// rules are never touched.
func (h Host) SyncRules6(want []PodRule, hold []netip.Addr) error {
	return h.syncRules(netlink.FAMILY_V6, want, hold)
}

// ObserveRules6 lists the pod-shaped IPv6 rules at the two priorities as Observe lists the IPv4 ones: a "from"
// rule as {IP, Table}, a "to" rule as {IP, 254}; sorted by IP, then Table.
func (h Host) ObserveRules6() ([]PodRule, error) {
	rules := h.Rules.withDefaults()
	if err := rules.validate(); err != nil {
		return nil, fmt.Errorf("datapath: observe IPv6 rules: %w", err)
	}
	nh, done, err := h.handle()
	if err != nil {
		return nil, fmt.Errorf("datapath: observe IPv6 rules: %w", err)
	}
	defer done()
	all, err := nh.RuleList(netlink.FAMILY_V6)
	if err != nil {
		return nil, fmt.Errorf("datapath: observe IPv6 rules: list: %w", err)
	}
	var out []PodRule
	for _, r := range all {
		if k, ok := podRuleOf(r); ok && k.IP.Is6() && k.Priority == rules.forDirection(k.To) {
			out = append(out, PodRule{IP: k.IP, Table: k.Table})
		}
	}
	sortPodRules(out)
	return out, nil
}

// ObservePods6 lists the /128 routes of the main table through veths named like HostVethName (dual-stack pods'
// IPv6 addresses), sorted by Veth, then IP.
func (h Host) ObservePods6() ([]HostPod, error) {
	nh, done, err := h.handle()
	if err != nil {
		return nil, fmt.Errorf("datapath: observe IPv6 pods: %w", err)
	}
	defer done()
	links, err := nh.LinkList()
	if err != nil {
		return nil, fmt.Errorf("datapath: observe IPv6 pods: list links: %w", err)
	}
	veths := map[int]string{}
	for _, l := range links {
		if l.Type() == "veth" && isHostVethName(l.Attrs().Name) {
			veths[l.Attrs().Index] = l.Attrs().Name
		}
	}
	routes, err := nh.RouteListFiltered(netlink.FAMILY_V6, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("datapath: observe IPv6 pods: list routes: %w", err)
	}
	var out []HostPod
	for _, r := range routes {
		if a, ok := addr128(r.Dst); ok && r.Gw == nil && veths[r.LinkIndex] != "" {
			out = append(out, HostPod{Veth: veths[r.LinkIndex], IP: a})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Veth != out[j].Veth {
			return out[i].Veth < out[j].Veth
		}
		return out[i].IP.Less(out[j].IP)
	})
	return out, nil
}
