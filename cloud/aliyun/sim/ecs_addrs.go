package sim

import (
	"fmt"
	"net/netip"
	"time"
)

// An ENI's addresses: the per-type limits and the Assign/Unassign actions for IPv4 and IPv6.

// addrLimit is the most IPv4 addresses (primary included) or IPv6 addresses the ENI's instance type allows.
func (w *World) addrLimit(e *ENI, v6 bool) int {
	limit := w.maxAddrsPerENI() // an unattached ENI: attaching checks the instance type's figure
	if v6 {
		limit = maxIPv6PerENI
	}
	if in := w.instance(e.InstanceID); in != nil {
		if t := w.typeOf(in.Type); t != nil {
			limit = t.EniPrivateIpAddressQuantity
			if v6 {
				limit = t.EniIpv6AddressQuantity
			}
		}
	}
	return limit
}

func (w *World) assignPrivateIpAddresses(p params) (any, *APIError) {
	e, err := w.eniParam(p)
	if err != nil {
		return nil, err
	}
	if s := e.status(); s != "InUse" && s != "Available" {
		return nil, stateErr(e, "InUse")
	}
	want, err := p.list("PrivateIpAddress")
	if err != nil {
		return nil, err
	}
	n, err := p.intIn("SecondaryPrivateIpAddressCount", len(want), 0, 10)
	if err != nil {
		return nil, err
	}
	if n == 0 || n > 10 || (len(want) > 0 && n != len(want)) {
		return nil, apiErr(400, "InvalidParameter", "SecondaryPrivateIpAddressCount must be 1..10 per call (or the number of PrivateIpAddress.N given).")
	}
	if 1+len(e.Secondary)+n > w.addrLimit(e, false) {
		return nil, apiErr(403, "InvalidOperation.Ipv4CountExceeded", "The IPv4 address count of %s would exceed %d.", e.ID, w.addrLimit(e, false))
	}
	sw := w.vswitch(e.VSwitchID)
	var got []string
	if len(want) > 0 {
		used := w.usedAddrs(sw)
		for i, a := range want {
			if e := inBlock(sw.CIDR, a, fmt.Sprintf("PrivateIpAddress.%d", i+1)); e != nil {
				return nil, e
			}
			if used[a] {
				return nil, apiErr(403, "InvalidIp.IpAssigned", "The IP address %s is already assigned.", a)
			}
		}
		got = want
	} else if got, err = w.allocIPs(sw, n, false); err != nil {
		return nil, err
	}
	e.Secondary = append(e.Secondary, got...)
	for _, a := range got {
		e.mark(a, w.clock.Now())
		delete(e.Gone, a)
	}
	return map[string]any{"AssignedPrivateIpAddressesSet": map[string]any{"NetworkInterfaceId": e.ID,
		"PrivateIpSet": map[string]any{"PrivateIpAddress": got}}}, nil
}

func removeAll(list, drop []string) ([]string, bool) {
	gone := map[string]bool{}
	for _, d := range drop {
		gone[d] = true
	}
	var out []string
	for _, a := range list {
		if gone[a] {
			delete(gone, a)
			continue
		}
		out = append(out, a)
	}
	return out, len(gone) == 0
}

func (w *World) unassignPrivateIpAddresses(p params) (any, *APIError) {
	e, err := w.eniParam(p)
	if err != nil {
		return nil, err
	}
	drop, err := p.list("PrivateIpAddress")
	if err != nil {
		return nil, err
	}
	rest, ok := removeAll(e.Secondary, drop)
	if !ok {
		return nil, apiErr(403, "InvalidIp.IpUnassigned", "Some of the specified IP addresses are not assigned to %s.", e.ID)
	}
	e.Secondary = rest
	for _, a := range drop {
		e.gone(a, w.clock.Now())
	}
	return map[string]any{}, nil
}

func (w *World) assignIpv6Addresses(p params) (any, *APIError) {
	e, err := w.eniParam(p)
	if err != nil {
		return nil, err
	}
	want, err := p.list("Ipv6Address")
	if err != nil {
		return nil, err
	}
	n, err := p.intIn("Ipv6AddressCount", len(want), 0, maxIPv6PerENI)
	if err != nil {
		return nil, err
	}
	if n == 0 || (len(want) > 0 && n != len(want)) {
		return nil, apiErr(400, "InvalidParameter", "Ipv6AddressCount or Ipv6Address is mandatory (and they must agree).")
	}
	sw := w.vswitch(e.VSwitchID)
	used := w.usedAddrs(sw)
	for i, a := range want {
		if e := inBlock(sw.IPv6CIDR, a, fmt.Sprintf("Ipv6Address.%d", i+1)); e != nil {
			return nil, e
		}
		if used[a] {
			return nil, apiErr(403, "InvalidIp.IpAssigned", "The IP address %s is already assigned.", a)
		}
	}
	if len(e.IPv6)+n > w.addrLimit(e, true) {
		return nil, apiErr(403, "InvalidOperation.Ipv6CountExceeded", "The IPv6 address count of %s would exceed %d.", e.ID, w.addrLimit(e, true))
	}
	got := want
	if len(got) == 0 {
		if got, err = w.allocIPs(sw, n, true); err != nil {
			return nil, err
		}
	}
	e.IPv6 = append(e.IPv6, got...)
	for _, a := range got {
		e.mark(a, w.clock.Now())
	}
	return map[string]any{"NetworkInterfaceId": e.ID, "Ipv6Sets": map[string]any{"Ipv6Address": got}}, nil
}

func (w *World) unassignIpv6Addresses(p params) (any, *APIError) {
	e, err := w.eniParam(p)
	if err != nil {
		return nil, err
	}
	drop, err := p.list("Ipv6Address")
	if err != nil {
		return nil, err
	}
	rest, ok := removeAll(e.IPv6, drop)
	if !ok {
		return nil, apiErr(403, "InvalidIp.IpUnassigned", "Some of the specified IPv6 addresses are not assigned to %s.", e.ID)
	}
	e.IPv6 = rest
	return map[string]any{}, nil
}

func (e *ENI) mark(what string, at time.Time) {
	if e.Since == nil {
		e.Since = map[string]time.Time{}
	}
	e.Since[what] = at
}

// gone records that an address left the ENI at at (metadata trails the API).
func (e *ENI) gone(addr string, at time.Time) {
	if e.Gone == nil {
		e.Gone = map[string]time.Time{}
	}
	e.Gone[addr] = at
	delete(e.Since, addr)
}

// visible tells whether what (an address, or "attached") has been true for at least lag at now; things that
// were there from the start (no record) are visible.
func (e *ENI) visible(what string, now time.Time, lag time.Duration) bool {
	at, ok := e.Since[what]
	return !ok || !now.Before(at.Add(lag))
}

// inBlock checks that an address given by the caller (parameter name) is a host of the vSwitch block cidr.
func inBlock(cidr, addr, name string) *APIError {
	pfx, err := netip.ParsePrefix(cidr)
	a, err2 := netip.ParseAddr(addr)
	if err != nil || err2 != nil || !pfx.Contains(a) || a == pfx.Masked().Addr() {
		return errParam(name, addr, "an address of the vSwitch block "+cidr)
	}
	return nil
}
