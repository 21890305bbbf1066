package backend

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// PrefixToIPNet converts p (masked) to the net.IPNet netlink wants.
func PrefixToIPNet(p netip.Prefix) *net.IPNet {
	p = p.Masked()
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// RouteKey identifies a route by what weft decides about it: destination, gateway, device, onlink.
func RouteKey(r netlink.Route) string {
	dst := "default"
	if r.Dst != nil {
		dst = r.Dst.String()
	}
	return fmt.Sprintf("%s via %v dev %d onlink=%v", dst, r.Gw, r.LinkIndex, r.Flags&unix.RTNH_F_ONLINK != 0)
}

// SyncRoutes makes the routes of one family that `owned` selects match desired exactly: missing or different
// routes are replaced, owned routes that are not desired are deleted. An owned route whose destination is desired
// through another device is deleted before its replacement is added: IPv6 checks an onlink gateway against the
// table, where the old route through the other device makes the replace fail (EINVAL, "Nexthop has invalid
// gateway or device mismatch"), e.g. when a DirectRouting peer's address leaves the external link. Failures are
// collected, not fatal.
func SyncRoutes(h *netlink.Handle, family int, desired []netlink.Route, owned func(netlink.Route) bool) error {
	current, err := h.RouteListFiltered(family, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	want := map[string]netlink.Route{}
	wantLink := map[string]int{} // destination -> the device its (first) desired route uses
	for _, r := range desired {
		want[RouteKey(r)] = r
		if _, dup := wantLink[r.Dst.String()]; !dup {
			wantLink[r.Dst.String()] = r.LinkIndex
		}
	}
	have := map[string]bool{}
	var errs []error
	for _, r := range current {
		if r.Dst == nil || !owned(r) {
			continue
		}
		k := RouteKey(r)
		if _, ok := want[k]; ok {
			have[k] = true
			continue
		}
		if link, ok := wantLink[r.Dst.String()]; ok && link == r.LinkIndex {
			continue // replaced below
		}
		if err := h.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("delete route %s: %w", k, err))
		}
	}
	for _, r := range desired { // in desired's order, so the outcome does not depend on map iteration
		k := RouteKey(r)
		if have[k] {
			continue
		}
		have[k] = true // a route listed twice is replaced once
		r := r
		if err := h.RouteReplace(&r); err != nil {
			errs = append(errs, fmt.Errorf("replace route %s: %w", k, err))
		}
	}
	return errors.Join(errs...)
}

// InPrefix tells whether a route's destination lies inside p.
func InPrefix(r netlink.Route, p netip.Prefix) bool {
	if r.Dst == nil || !p.IsValid() {
		return false
	}
	a, ok := netip.AddrFromSlice(r.Dst.IP)
	return ok && p.Contains(a.Unmap())
}
