package datapath

// Dual stack (the eni backend's ip_stack "dual"): a pod with Pod.IPv6 set gets, beside its IPv4 datapath,
// Terway's IPv6 one. In the pod: IPv6 on (disable_ipv6 0, router advertisements and autoconf still off), the
// address as /128 without duplicate address detection (the cloud hands it to one ENI only), a default route via
// GatewayV6 on-link and a permanent neighbour entry for GatewayV6 pointing at the host veth's MAC. On the host:
// net.ipv6.conf.all.forwarding 1 (host-wide, like ip_forward, it stays), IPv6 on the host veth, a /128 route to
// the pod via its veth with a permanent neighbour entry to the pod end's MAC (so the first packets never wait for
// neighbour discovery while the veth's link-local address is still tentative), and `ip -6 rule` Rules.ToPod "to
// IPv6/128 lookup main" and Rules.FromPod "from IPv6/128 lookup Table". The ENI's table gets "default via the
// vSwitch's IPv6 gateway dev ENI" and the vSwitch's IPv6 block on-link (EnsureENIIPv6).

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/internal/nsutil"
)

// GatewayV6 is the pod's IPv6 default gateway: on-link, a permanent neighbour entry to the host veth's MAC.
const GatewayV6 = "fe80::1"

var gatewayV6 = netip.MustParseAddr(GatewayV6)

// Add's IPv6 steps, after the IPv4 ones.
const (
	stepIPv6On        = "IPv6 on the veth"
	stepPodAddr6      = "pod IPv6 address"
	stepPodDefault6   = "pod IPv6 default route"
	stepPodNeigh6     = "pod IPv6 gateway neighbour"
	stepForward6      = "IPv6 forwarding"
	stepHostRoute6    = "host IPv6 route to the pod"
	stepHostNeigh6    = "host IPv6 neighbour of the pod"
	stepRuleToPod6    = "IPv6 rule to the pod"
	stepRuleFromPod6  = "IPv6 rule from the pod"
	ipv6RulesFamily   = netlink.FAMILY_V6
	ipv6HostRouteBits = 128
)

func host128(a netip.Addr) *net.IPNet {
	return &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(ipv6HostRouteBits, ipv6HostRouteBits)}
}

// addr128 is the address of a /128 IPv6 net, if n is one.
func addr128(n *net.IPNet) (netip.Addr, bool) {
	if n == nil {
		return netip.Addr{}, false
	}
	ones, bits := n.Mask.Size()
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok || ones != 128 || bits != 128 || !a.Is6() || a.Is4In6() {
		return netip.Addr{}, false
	}
	return a, true
}

// validateIPv6 checks Pod.IPv6 when set: a global unicast IPv6 address without a zone.
func (p Pod) validateIPv6() error {
	if !p.IPv6.IsValid() {
		return nil
	}
	if !p.IPv6.Is6() || p.IPv6.Is4In6() || !p.IPv6.IsGlobalUnicast() || p.IPv6.Zone() != "" {
		return fmt.Errorf("IPv6 %v: want a global unicast IPv6 address", p.IPv6)
	}
	return nil
}

type addStep = struct {
	name string
	do   func() error
}

// ipv6Steps are Add's IPv6 steps; none when the pod has no IPv6 address.
func (a *adder) ipv6Steps() []addStep {
	p := a.p
	if !p.IPv6.IsValid() {
		return nil
	}
	gw := net.IP(gatewayV6.AsSlice())
	return []addStep{
		{stepIPv6On, a.ipv6On},
		{stepPodAddr6, func() error {
			return a.pod.AddrAdd(a.podLink, &netlink.Addr{IPNet: host128(p.IPv6), Flags: unix.IFA_F_NODAD})
		}},
		{stepPodDefault6, func() error {
			return a.pod.RouteAdd(&netlink.Route{LinkIndex: a.podLink.Attrs().Index, Gw: gw, Family: netlink.FAMILY_V6,
				Dst: &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}, Flags: int(netlink.FLAG_ONLINK), Protocol: RouteProtocol})
		}},
		{stepPodNeigh6, func() error {
			return a.pod.NeighAdd(&netlink.Neigh{LinkIndex: a.podLink.Attrs().Index, Family: netlink.FAMILY_V6,
				State: netlink.NUD_PERMANENT, IP: gw, HardwareAddr: a.hostLink.Attrs().HardwareAddr})
		}},
		{stepForward6, func() error { return ensureSysctl(sysctlPath("ipv6", "conf", "all", "forwarding"), "1") }},
		{stepHostRoute6, func() error {
			r := &netlink.Route{LinkIndex: a.hostLink.Attrs().Index, Dst: host128(p.IPv6), Scope: netlink.SCOPE_UNIVERSE,
				Protocol: RouteProtocol, Table: unix.RT_TABLE_MAIN, Family: netlink.FAMILY_V6}
			if err := a.host.RouteAdd(r); err != nil {
				return fmt.Errorf("%s/128 dev %s: %w", p.IPv6, a.veth, err)
			}
			a.undo = append(a.undo, func() error {
				if err := a.host.RouteDel(r); err != nil && !notFound(err) {
					return fmt.Errorf("host route %s/128: %w", p.IPv6, err)
				}
				return nil
			})
			return nil
		}},
		{stepHostNeigh6, func() error {
			return a.host.NeighSet(&netlink.Neigh{LinkIndex: a.hostLink.Attrs().Index, Family: netlink.FAMILY_V6,
				State: netlink.NUD_PERMANENT, IP: net.IP(p.IPv6.AsSlice()), HardwareAddr: a.podLink.Attrs().HardwareAddr})
		}},
		{stepRuleToPod6, func() error {
			return a.ensureRule6(podRule{Priority: p.Rules.ToPod, To: true, IP: p.IPv6, Table: unix.RT_TABLE_MAIN})
		}},
		{stepRuleFromPod6, func() error { return a.ensureRule6(podRule{Priority: p.Rules.FromPod, IP: p.IPv6, Table: p.Table}) }},
	}
}

// ipv6On turns IPv6 on for both veth ends (a host may have it off by default for new devices).
func (a *adder) ipv6On() error {
	if _, err := os.Stat(sysctlPath("ipv6", "conf")); errors.Is(err, os.ErrNotExist) {
		return errors.New("the kernel has no IPv6 (net.ipv6 missing): a dual-stack pod needs it")
	}
	if err := ensureSysctl(sysctlPath("ipv6", "conf", a.veth, "disable_ipv6"), "0"); err != nil {
		return fmt.Errorf("host veth %s: %w", a.veth, err)
	}
	return nsutil.Do(a.podNs, func() error {
		return ensureSysctl(sysctlPath("ipv6", "conf", a.p.IfName, "disable_ipv6"), "0")
	})
}

// ensureRule6 adds the IPv6 rule want unless it is there; a rule of the same priority and address with another
// table (a leftover) is replaced. Undo removes what it added and restores what it replaced.
func (a *adder) ensureRule6(want podRule) error {
	rules, err := a.host.RuleListFiltered(ipv6RulesFamily, &netlink.Rule{Priority: want.Priority}, netlink.RT_FILTER_PRIORITY)
	if err != nil {
		return fmt.Errorf("list IPv6 rules: %w", err)
	}
	present := false
	for _, r := range rules {
		k, ok := podRuleOf(r)
		if !ok || k.Priority != want.Priority || k.To != want.To || k.IP != want.IP {
			continue
		}
		if k == want {
			present = true
			continue
		}
		if err := a.host.RuleDel(&r); err != nil && !notFound(err) {
			return fmt.Errorf("replace stale IPv6 %s: %w", k, err)
		}
		a.undo = append(a.undo, func() error { return a.host.RuleAdd(&r) })
	}
	if !present {
		added, err := addRuleOnce(a.host, want)
		if err != nil {
			return fmt.Errorf("IPv6 %s: %w", want, err)
		}
		a.undoIf(added, func() error {
			if err := a.host.RuleDel(want.rule()); err != nil && !notFound(err) {
				return fmt.Errorf("IPv6 %s: %w", want, err)
			}
			return nil
		})
	}
	return nil
}

// routes6 adds to ips the /128 destinations of the veth's IPv6 routes in the main table (Del: the pod's IPv6
// address when the caller does not know it).
func routes6(h *netlink.Handle, link netlink.Link, ips map[netip.Addr]bool) error {
	routes, err := h.RouteListFiltered(netlink.FAMILY_V6, &netlink.Route{LinkIndex: link.Attrs().Index,
		Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("IPv6 routes of %s: %w", link.Attrs().Name, err)
	}
	for _, r := range routes {
		if a, ok := addr128(r.Dst); ok && r.Protocol == RouteProtocol {
			ips[a] = true
		}
	}
	return nil
}

// EnsureENIIPv6 readies the ENI with ifindex for dual-stack pods: IPv6 on (router advertisements off: the routes
// are weft's), IPv6 forwarding on, and in its table "cidr dev ENI" (the vSwitch's IPv6 block on-link) and
// "default via gw dev ENI". Idempotent (RouteReplace); EnsureENI's IPv4 routes of the table are left alone.
func (h Host) EnsureENIIPv6(ifindex, table int, gw netip.Addr, cidr netip.Prefix) error {
	if !gw.Is6() || gw.Is4In6() || gw.IsUnspecified() || !cidr.IsValid() || !cidr.Addr().Is6() || cidr.Addr().Is4In6() {
		return fmt.Errorf("datapath: ENI IPv6: gateway %v, block %v: want an IPv6 gateway and the vSwitch's IPv6 block", gw, cidr)
	}
	if err := validTable(table); err != nil {
		return fmt.Errorf("datapath: ENI IPv6: table %d: %w", table, err)
	}
	nh, done, err := h.handle()
	if err != nil {
		return err
	}
	defer done()
	link, err := nh.LinkByIndex(ifindex)
	if err != nil {
		return fmt.Errorf("datapath: ENI IPv6: link %d: %w", ifindex, err)
	}
	name := link.Attrs().Name
	fail := func(what string, err error) error {
		return fmt.Errorf("datapath: ENI %s IPv6: %s: %w", name, what, err)
	}
	if err := h.sameNetns(link); err != nil {
		return fail("sysctls", err)
	}
	for _, s := range []struct{ path, v string }{
		{sysctlPath("ipv6", "conf", name, "disable_ipv6"), "0"},
		{sysctlPath("ipv6", "conf", name, "accept_ra"), "0"},
		{sysctlPath("ipv6", "conf", "all", "forwarding"), "1"},
	} {
		if err := ensureSysctl(s.path, s.v); err != nil {
			return fail(s.path, err)
		}
	}
	// The block first, then the default via the gateway it holds: the kernel checks an IPv6 gateway against the
	// route's own table, whereas "onlink" would check it against main, where the primary ENI's route to the same
	// vSwitch block points elsewhere (EINVAL).
	for _, r := range []*netlink.Route{
		{LinkIndex: ifindex, Dst: prefixNet(cidr.Masked()), Table: table, Protocol: RouteProtocol, Scope: netlink.SCOPE_UNIVERSE,
			Family: netlink.FAMILY_V6},
		{LinkIndex: ifindex, Dst: &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}, Gw: net.IP(gw.AsSlice()),
			Table: table, Protocol: RouteProtocol, Family: netlink.FAMILY_V6},
	} {
		if err := nh.RouteReplace(r); err != nil {
			return fail(fmt.Sprintf("route %s table %d", routeString(*r, name), table), err)
		}
	}
	return nil
}
