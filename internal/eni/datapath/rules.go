package datapath

// The pod rules' one shape for both families ("to IP lookup main", "from IP lookup Table", /32 or /128), read
// from and written to the kernel by the same helpers for IPv4 and IPv6 (Add, Del, Check, SyncRules, SyncRules6).

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// podRule is one rule of the shape this package installs: "to IP/32 lookup Table" (To) or "from IP/32 lookup
// Table", with no other selector; /128 for an IPv6 IP (dual stack). One shape for both families: the IPv4 and the
// IPv6 rule code share rule and podRuleOf.
type podRule struct {
	Priority int
	To       bool
	IP       netip.Addr
	Table    int
}

func (k podRule) String() string {
	dir := "from"
	if k.To {
		dir = "to"
	}
	return fmt.Sprintf("rule %d %s %s/%d lookup %d", k.Priority, dir, k.IP, k.IP.BitLen(), k.Table)
}

func (k podRule) rule() *netlink.Rule {
	r := netlink.NewRule()
	r.Family, r.Priority, r.Table, r.Protocol = netlink.FAMILY_V4, k.Priority, k.Table, uint8(RouteProtocol)
	n := host32(k.IP)
	if k.IP.Is6() {
		r.Family, n = netlink.FAMILY_V6, host128(k.IP)
	}
	if k.To {
		r.Dst = n
	} else {
		r.Src = n
	}
	return r
}

// podRuleOf reads r as a podRule if it has exactly that shape (an IPv4 rule with /32s, an IPv6 one with /128s).
func podRuleOf(r netlink.Rule) (podRule, bool) {
	if (r.Family != netlink.FAMILY_V4 && r.Family != netlink.FAMILY_V6) || r.Invert || r.Mark != 0 || r.Mask != nil ||
		r.Tos != 0 || r.TunID != 0 || r.Goto >= 0 || r.Flow >= 0 || r.IifName != "" || r.OifName != "" ||
		r.SuppressIfgroup >= 0 || r.SuppressPrefixlen >= 0 || r.Dport != nil || r.Sport != nil || r.IPProto != 0 ||
		r.UIDRange != nil || r.Table == 0 || (r.Type != 0 && r.Type != unix.RTN_UNICAST) {
		return podRule{}, false
	}
	addr := addr32
	if r.Family == netlink.FAMILY_V6 {
		addr = addr128
	}
	dst, hasDst := addr(r.Dst)
	src, hasSrc := addr(r.Src)
	switch {
	case hasDst && r.Src == nil:
		return podRule{Priority: r.Priority, To: true, IP: dst, Table: r.Table}, true
	case hasSrc && r.Dst == nil:
		return podRule{Priority: r.Priority, IP: src, Table: r.Table}, true
	}
	return podRule{}, false
}

// delRules removes the pod rules of family (IPv4 or IPv6) of the addresses in ips at rules' priorities.
func delRules(h *netlink.Handle, family int, rules Rules, ips map[netip.Addr]bool) []error {
	if len(ips) == 0 {
		return nil
	}
	list, err := h.RuleList(family)
	if err != nil {
		return []error{fmt.Errorf("list rules: %w", err)}
	}
	var errs []error
	for _, r := range list {
		k, ok := podRuleOf(r)
		if !ok || !ips[k.IP] || k.Priority != rules.forDirection(k.To) {
			continue
		}
		if err := h.RuleDel(&r); err != nil && !notFound(err) {
			errs = append(errs, fmt.Errorf("delete %s: %w", k, err))
		}
	}
	return errs
}

// addRuleOnce adds want unless the kernel already holds it: weftd's host loop repairs a pod's rules once it sees the
// pod's first one, so it may add the same rule between Add's look and its write. added says whether this call
// made the rule (and so may undo it); an EEXIST for a rule that is not want itself stays an error.
func addRuleOnce(h *netlink.Handle, want podRule) (added bool, err error) {
	err = h.RuleAdd(want.rule())
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, unix.EEXIST) {
		return false, err
	}
	family := netlink.FAMILY_V4
	if want.IP.Is6() {
		family = netlink.FAMILY_V6
	}
	rules, lerr := h.RuleListFiltered(family, &netlink.Rule{Priority: want.Priority}, netlink.RT_FILTER_PRIORITY)
	if lerr != nil {
		return false, fmt.Errorf("%w (listing rules to see why: %w)", err, lerr)
	}
	for _, r := range rules {
		if k, ok := podRuleOf(r); ok && k == want {
			return false, nil
		}
	}
	return false, err
}
