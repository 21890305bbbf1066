package datapath

// weftd's side of dual stack on the host: the IPv6 pod rules kept as the pool's records say (SyncRules6, the
// IPv6 twin of SyncRules: stray rules at the two priorities go, missing ones come back) and observed for the
// start-up reconcile and the host loop (ObserveRules6). EnsureENIIPv6 (ipv6.go) repairs an ENI table's IPv6
// routes.

import (
	"fmt"

	"github.com/vishvananda/netlink"
)

// SyncRules6 makes the IPv6 rules at exactly Rules.ToPod and Rules.FromPod those of want, as SyncRules does for
// IPv4 ("to IP/128 lookup main", "from IP/128 lookup Table"); IPv4 rules are never touched.
func (h Host) SyncRules6(want []PodRule) error { return h.syncRules(netlink.FAMILY_V6, want) }

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
