package datapath

// Exclusive ENI mode with dual stack (exclusive.go: the design): an ExclusivePod with IPv6 set also gets, as an
// ECS instance's own ENI has it, the ENI's IPv6 address with the vSwitch IPv6 block's prefix length on eth0 (the
// block on-link, no duplicate address detection: the cloud gives the address to this ENI only) and the IPv6
// default route via the vSwitch's IPv6 gateway on eth0; IPv6 on for eth0 with router advertisements and
// autoconfiguration off (the routes are weft's; the pod forwards nothing, its forwarding stays off). With
// HostRoutes6 (the node's IPv6 address) the second veth carries them too: IPv6 on both ends, in the pod a route per
// prefix via GatewayV6 on veth1 with the pod's IPv6 address as source and a permanent neighbour GatewayV6 -> the
// host end's MAC; on the host IPv6 forwarding on, the /128 route to the pod via the host end and a permanent
// neighbour to the pod end's MAC. Returning the ENI flushes its addresses (moveOut), the IPv6 one with them, so
// it comes back to the host without it.

import (
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/internal/nsutil"
)

// validateV6 checks the IPv6 fields of an ExclusivePod: none without IPv6; with it a global unicast address,
// the block's prefix length (1 to 128), a gateway, HostRoutes6 IPv6 prefixes other than the default.
func (p ExclusivePod) validateV6() []error {
	var errs []error
	if !p.IPv6.IsValid() {
		if p.IPv6Gateway.IsValid() || p.IPv6Bits != 0 || len(p.HostRoutes6) > 0 {
			errs = append(errs, fmt.Errorf("IPv6Gateway %v, IPv6Bits %d, HostRoutes6 %v: want none without IPv6", p.IPv6Gateway, p.IPv6Bits, p.HostRoutes6))
		}
		return errs
	}
	if !p.IPv6.Is6() || p.IPv6.Is4In6() || !p.IPv6.IsGlobalUnicast() || p.IPv6.Zone() != "" {
		errs = append(errs, fmt.Errorf("IPv6 %v: want a global unicast IPv6 address", p.IPv6))
	}
	if p.IPv6Bits < 1 || p.IPv6Bits > 128 {
		errs = append(errs, fmt.Errorf("IPv6Bits %d: want the vSwitch IPv6 block's prefix length, 1 to 128", p.IPv6Bits))
	}
	if g := p.IPv6Gateway; !g.Is6() || g.Is4In6() || g.IsUnspecified() || g.IsMulticast() || g == p.IPv6 {
		errs = append(errs, fmt.Errorf("IPv6Gateway %v: want the vSwitch's IPv6 gateway", g))
	}
	for i, r := range p.HostRoutes6 {
		if !r.IsValid() || !r.Addr().Is6() || r.Addr().Is4In6() || r.Bits() == 0 {
			errs = append(errs, fmt.Errorf("HostRoutes6[%d] %v: want an IPv6 prefix other than the default", i, r))
		}
	}
	return errs
}

// ipv6Addr is the pod's IPv6 address on eth0: with the block's prefix length.
func (p ExclusivePod) ipv6Addr() *net.IPNet {
	return &net.IPNet{IP: net.IP(p.IPv6.AsSlice()), Mask: net.CIDRMask(p.IPv6Bits, 128)}
}

var default6 = &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}

// eniV6Steps are AddExclusive's IPv6 steps on the ENI (after its IPv4 ones); none without IPv6.
func (x *exclusive) eniV6Steps() []addStep {
	a, p := x.a, x.p
	if !p.IPv6.IsValid() {
		return nil
	}
	return []addStep{
		{"ENI IPv6 on", func() error {
			if _, err := os.Stat(sysctlPath("ipv6", "conf")); errors.Is(err, os.ErrNotExist) {
				return errors.New("the kernel has no IPv6 (net.ipv6 missing): a dual-stack pod needs it")
			}
			return nsutil.Do(a.podNs, func() error {
				for _, kv := range [][2]string{{"accept_ra", "0"}, {"autoconf", "0"}, {"disable_ipv6", "0"}} {
					if err := ensureSysctl(sysctlPath("ipv6", "conf", p.IfName, kv[0]), kv[1]); err != nil {
						return err
					}
				}
				return nil
			})
		}},
		{"ENI IPv6 address", func() error {
			return a.pod.AddrAdd(x.eni, &netlink.Addr{IPNet: p.ipv6Addr(), Flags: unix.IFA_F_NODAD})
		}},
		{"IPv6 default route via the vSwitch gateway", func() error {
			return a.pod.RouteAdd(&netlink.Route{LinkIndex: x.eni.Attrs().Index, Dst: default6, Gw: net.IP(p.IPv6Gateway.AsSlice()),
				Flags: int(netlink.FLAG_ONLINK), Family: netlink.FAMILY_V6, Protocol: RouteProtocol})
		}},
	}
}

// vethV6Steps are AddExclusive's IPv6 steps on the second veth (after the host end is up); none without
// HostRoutes6.
func (x *exclusive) vethV6Steps() []addStep {
	a, p := x.a, x.p
	if !p.IPv6.IsValid() || len(p.HostRoutes6) == 0 {
		return nil
	}
	gw := net.IP(gatewayV6.AsSlice())
	return []addStep{
		{"IPv6 on the second veth", a.ipv6On},
		{"second veth IPv6 gateway neighbour", func() error {
			return a.pod.NeighAdd(&netlink.Neigh{LinkIndex: a.podLink.Attrs().Index, Family: netlink.FAMILY_V6,
				State: netlink.NUD_PERMANENT, IP: gw, HardwareAddr: a.hostLink.Attrs().HardwareAddr})
		}},
		{"pod IPv6 routes to the host", func() error {
			for _, r := range p.HostRoutes6 {
				rt := &netlink.Route{LinkIndex: a.podLink.Attrs().Index, Dst: prefixNet(r.Masked()), Gw: gw, Family: netlink.FAMILY_V6,
					Flags: int(netlink.FLAG_ONLINK), Src: net.IP(p.IPv6.AsSlice()), Protocol: RouteProtocol}
				if err := a.pod.RouteAdd(rt); err != nil && !errors.Is(err, unix.EEXIST) {
					return fmt.Errorf("%s via %s dev %s: %w", r, GatewayV6, ExclusiveVeth, err)
				}
			}
			return nil
		}},
		{stepForward6, func() error { return ensureSysctl(sysctlPath("ipv6", "conf", "all", "forwarding"), "1") }},
		{stepHostRoute6, func() error {
			r := &netlink.Route{LinkIndex: a.hostLink.Attrs().Index, Dst: host128(p.IPv6), Protocol: RouteProtocol,
				Table: unix.RT_TABLE_MAIN, Family: netlink.FAMILY_V6}
			if err := a.host.RouteAdd(r); err != nil && !errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("%s/128 dev %s: %w", p.IPv6, a.veth, err)
			}
			return nil // the host veth's deletion (undo, Del) takes the route with it
		}},
		{stepHostNeigh6, func() error {
			return a.host.NeighSet(&netlink.Neigh{LinkIndex: a.hostLink.Attrs().Index, Family: netlink.FAMILY_V6,
				State: netlink.NUD_PERMANENT, IP: net.IP(p.IPv6.AsSlice()), HardwareAddr: a.podLink.Attrs().HardwareAddr})
		}},
	}
}

// checkExclusiveV6 is CheckExclusive's IPv6 part: the address and the default route on eth0, and with
// HostRoutes6 the second veth's routes and the host's /128 route to the pod.
func checkExclusiveV6(badf func(string, ...any), p ExclusivePod, pod, host *netlink.Handle, eni, pv, hv netlink.Link) {
	if !p.IPv6.IsValid() {
		return
	}
	has := func(h *netlink.Handle, l netlink.Link, dst *net.IPNet, gw net.IP) bool {
		rs, err := h.RouteListFiltered(netlink.FAMILY_V6, &netlink.Route{LinkIndex: l.Attrs().Index, Table: unix.RT_TABLE_MAIN},
			netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
		if err != nil {
			badf("IPv6 routes of %s: %v", l.Attrs().Name, err)
			return false
		}
		for _, r := range rs {
			if (isDefault(r.Dst) && isDefault(dst) || r.Dst != nil && dst != nil && r.Dst.String() == dst.String()) && (gw == nil || r.Gw.Equal(gw)) {
				return true
			}
		}
		return false
	}
	if eni != nil {
		addrs, _ := pod.AddrList(eni, netlink.FAMILY_V6)
		if !slicesContainsFunc(addrs, func(a netlink.Addr) bool { return a.IPNet.String() == p.ipv6Addr().String() }) {
			badf("pod interface %s lacks %s/%d", p.IfName, p.IPv6, p.IPv6Bits)
		}
		if !has(pod, eni, default6, net.IP(p.IPv6Gateway.AsSlice())) {
			badf("pod: no IPv6 default route via %s dev %s", p.IPv6Gateway, p.IfName)
		}
	}
	if len(p.HostRoutes6) == 0 {
		return
	}
	if pv != nil {
		for _, r := range p.HostRoutes6 {
			if !has(pod, pv, prefixNet(r.Masked()), net.IP(gatewayV6.AsSlice())) {
				badf("pod: no route %s via %s dev %s", r.Masked(), GatewayV6, ExclusiveVeth)
			}
		}
	}
	if hv != nil && !has(host, hv, host128(p.IPv6), nil) {
		badf("host: no route %s/128 dev %s", p.IPv6, hv.Attrs().Name)
	}
}

// insertSteps puts more after the step named after (at the end when there is none).
func insertSteps(steps []addStep, after string, more []addStep) []addStep {
	for i, s := range steps {
		if s.name == after {
			return append(steps[:i+1], append(more, steps[i+1:]...)...)
		}
	}
	return append(steps, more...)
}
