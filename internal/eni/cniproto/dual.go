package cniproto

import (
	"fmt"
	"net/netip"
)

// validateDual checks the dual-stack part of an ADD reply: with no IPv6 address, no IPv6 field at all; with one,
// a global unicast IPv6 address inside the vSwitch's IPv6 block and a gateway; in exclusive mode also the IPv6
// host routes (exclusive_dual.go).
func (r AddReply) validateDual() error {
	if err := r.validateExclusiveDual(); err != nil {
		return err
	}
	if !r.IPv6.IsValid() {
		if r.ENI.IPv6Gateway.IsValid() || r.ENI.VSwitchIPv6CIDR.IsValid() {
			return fmt.Errorf("ENI.IPv6Gateway %v, ENI.VSwitchIPv6CIDR %v: expected neither without the pod's IPv6 address", r.ENI.IPv6Gateway, r.ENI.VSwitchIPv6CIDR)
		}
		return nil
	}
	if !validIPv6(r.IPv6) {
		return fmt.Errorf("IPv6 %v: expected the pod's global unicast IPv6 address", r.IPv6)
	}
	c := r.ENI.VSwitchIPv6CIDR
	if !c.IsValid() || !validIPv6(c.Addr()) || !c.Contains(r.IPv6) {
		return fmt.Errorf("ENI.VSwitchIPv6CIDR %v: expected the vSwitch's IPv6 block holding %v", c, r.IPv6)
	}
	if g := r.ENI.IPv6Gateway; !g.Is6() || g.Is4In6() || g.IsUnspecified() || g.IsMulticast() || g.Zone() != "" || g == r.IPv6 {
		return fmt.Errorf("ENI.IPv6Gateway %v: expected the vSwitch's IPv6 gateway", g)
	}
	return nil
}

func validIPv6(a netip.Addr) bool {
	return a.Is6() && !a.Is4In6() && a.IsGlobalUnicast() && a.Zone() == ""
}
