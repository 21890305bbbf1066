package cniproto

import "fmt"

// validateExclusiveDual checks AddReply.HostRoutes6: only in exclusive mode with the pod's IPv6 address, at most
// maxHostRoutes, each an IPv6 prefix other than the default. The rest of an exclusive dual-stack reply is
// validateDual's (the address inside the vSwitch's IPv6 block, the gateway) and validateExclusive's.
func (r AddReply) validateExclusiveDual() error {
	if len(r.HostRoutes6) == 0 {
		return nil
	}
	if r.Mode != ModeExclusive || !r.IPv6.IsValid() {
		return fmt.Errorf("HostRoutes6: %d prefixes, expected none outside exclusive mode with an IPv6 address (Mode %q, IPv6 %v)",
			len(r.HostRoutes6), clip(r.Mode), r.IPv6)
	}
	if len(r.HostRoutes6) > maxHostRoutes {
		return fmt.Errorf("HostRoutes6: %d, expected at most %d", len(r.HostRoutes6), maxHostRoutes)
	}
	for i, p := range r.HostRoutes6 {
		if !p.IsValid() || !p.Addr().Is6() || p.Addr().Is4In6() || p.Addr().Zone() != "" || p.Bits() == 0 {
			return fmt.Errorf("HostRoutes6[%d] %v: expected an IPv6 prefix other than the default", i, p)
		}
	}
	return nil
}
