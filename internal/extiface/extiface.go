// Package extiface chooses the external interface weftd uses for inter-node traffic, with upstream flanneld's
// rules: the first usable --iface (a name or one of its addresses), else the first interface whose name or address
// matches an --iface-regex, else the interface of the route towards --iface-can-reach, else the interface of the
// default route. The published addresses are --public-ip / --public-ipv6 when given, else the interface's own.
package extiface

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/backend"
)

// Options select the interface.
type Options struct {
	Ifaces     []string // names or addresses, tried in order
	IfaceRegex []string // regexes matched against addresses, then names
	CanReach   string   // an address whose route picks the interface
	PublicIP   string
	PublicIPv6 string
	EnableIPv4 bool
	EnableIPv6 bool
}

// Lookup finds the external interface in the current network namespace.
func Lookup(o Options) (*backend.ExternalInterface, error) {
	var pub4, pub6 netip.Addr
	var err error
	if o.PublicIP != "" {
		if pub4, err = netip.ParseAddr(o.PublicIP); err != nil || !pub4.Is4() {
			return nil, fmt.Errorf("--public-ip=%q: expected an IPv4 address", o.PublicIP)
		}
	}
	if o.PublicIPv6 != "" {
		if pub6, err = netip.ParseAddr(o.PublicIPv6); err != nil || !pub6.Is6() {
			return nil, fmt.Errorf("--public-ipv6=%q: expected an IPv6 address", o.PublicIPv6)
		}
	}
	link, chosen, err := pick(o)
	if err != nil {
		return nil, err
	}
	ifc, err := net.InterfaceByIndex(link.Attrs().Index)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", link.Attrs().Name, err)
	}
	if ifc.MTU == 0 {
		return nil, fmt.Errorf("interface %s: MTU is 0", ifc.Name)
	}
	ei := &backend.ExternalInterface{Iface: ifc}
	if o.EnableIPv4 {
		if chosen.Is4() {
			ei.IfaceAddr = chosen
		} else if ei.IfaceAddr, err = firstAddr(link, netlink.FAMILY_V4); err != nil {
			return nil, err
		}
		ei.ExtAddr = ei.IfaceAddr
		if pub4.IsValid() {
			ei.ExtAddr = pub4
		}
	}
	if o.EnableIPv6 {
		if chosen.Is6() {
			ei.IfaceV6 = chosen
		} else if ei.IfaceV6, err = firstAddr(link, netlink.FAMILY_V6); err != nil {
			return nil, err
		}
		ei.ExtV6Addr = ei.IfaceV6
		if pub6.IsValid() {
			ei.ExtV6Addr = pub6
		}
	}
	return ei, nil
}

func pick(o Options) (netlink.Link, netip.Addr, error) {
	if len(o.Ifaces) > 0 {
		var errs []error
		for _, s := range o.Ifaces {
			l, a, err := byNameOrAddr(s)
			if err == nil {
				return l, a, nil
			}
			errs = append(errs, err)
		}
		return nil, netip.Addr{}, fmt.Errorf("--iface: no usable interface: %w", errors.Join(errs...))
	}
	if len(o.IfaceRegex) > 0 {
		return byRegex(o.IfaceRegex)
	}
	if o.CanReach != "" {
		dst, err := netip.ParseAddr(o.CanReach)
		if err != nil {
			return nil, netip.Addr{}, fmt.Errorf("--iface-can-reach=%q: expected an IP address", o.CanReach)
		}
		routes, err := netlink.RouteGet(net.IP(dst.AsSlice()))
		if err != nil || len(routes) == 0 {
			return nil, netip.Addr{}, fmt.Errorf("--iface-can-reach=%s: no route: %v", dst, err)
		}
		l, err := netlink.LinkByIndex(routes[0].LinkIndex)
		if err != nil {
			return nil, netip.Addr{}, fmt.Errorf("--iface-can-reach=%s: %w", dst, err)
		}
		src, _ := netip.AddrFromSlice(routes[0].Src)
		return l, src.Unmap(), nil
	}
	return defaultRouteLink(o)
}

func byNameOrAddr(s string) (netlink.Link, netip.Addr, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		l, err := linkWithAddr(a)
		return l, a, err
	}
	l, err := netlink.LinkByName(s)
	if err != nil {
		return nil, netip.Addr{}, fmt.Errorf("interface %q: %w", s, err)
	}
	return l, netip.Addr{}, nil
}

func linkWithAddr(a netip.Addr) (netlink.Link, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, err
	}
	for _, l := range links {
		addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			continue
		}
		for _, ad := range addrs {
			if x, ok := netip.AddrFromSlice(ad.IP); ok && x.Unmap() == a {
				return l, nil
			}
		}
	}
	return nil, fmt.Errorf("no interface has address %s", a)
}

func byRegex(exprs []string) (netlink.Link, netip.Addr, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, netip.Addr{}, err
	}
	for _, e := range exprs {
		re, err := regexp.Compile(e)
		if err != nil {
			return nil, netip.Addr{}, fmt.Errorf("--iface-regex=%q: %w", e, err)
		}
		// Addresses first, then names, as upstream.
		for _, l := range links {
			addrs, _ := netlink.AddrList(l, netlink.FAMILY_ALL)
			for _, ad := range addrs {
				if ad.Scope != unix.RT_SCOPE_UNIVERSE {
					continue
				}
				if re.MatchString(ad.IP.String()) {
					a, _ := netip.AddrFromSlice(ad.IP)
					return l, a.Unmap(), nil
				}
			}
		}
		for _, l := range links {
			if re.MatchString(l.Attrs().Name) {
				return l, netip.Addr{}, nil
			}
		}
	}
	return nil, netip.Addr{}, fmt.Errorf("--iface-regex %q: no interface matches", exprs)
}

func defaultRouteLink(o Options) (netlink.Link, netip.Addr, error) {
	fams := []int{}
	if o.EnableIPv4 {
		fams = append(fams, netlink.FAMILY_V4)
	}
	if o.EnableIPv6 {
		fams = append(fams, netlink.FAMILY_V6)
	}
	for _, fam := range fams {
		routes, err := netlink.RouteListFiltered(fam, &netlink.Route{Dst: nil}, netlink.RT_FILTER_DST)
		if err != nil {
			continue
		}
		for _, r := range routes {
			if r.Dst != nil && !isDefault(r.Dst) {
				continue
			}
			if r.LinkIndex <= 0 {
				continue
			}
			l, err := netlink.LinkByIndex(r.LinkIndex)
			if err == nil {
				return l, netip.Addr{}, nil
			}
		}
	}
	return nil, netip.Addr{}, errors.New("no default route: give --iface, --iface-regex or --iface-can-reach")
}

func isDefault(n *net.IPNet) bool {
	ones, _ := n.Mask.Size()
	return ones == 0
}

func firstAddr(l netlink.Link, fam int) (netip.Addr, error) {
	addrs, err := netlink.AddrList(l, fam)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("interface %s: %w", l.Attrs().Name, err)
	}
	for _, ad := range addrs {
		if ad.Scope != unix.RT_SCOPE_UNIVERSE {
			continue
		}
		if a, ok := netip.AddrFromSlice(ad.IP); ok {
			return a.Unmap(), nil
		}
	}
	name := "IPv4"
	if fam == netlink.FAMILY_V6 {
		name = "IPv6"
	}
	return netip.Addr{}, fmt.Errorf("interface %s has no global %s address", l.Attrs().Name, name)
}
