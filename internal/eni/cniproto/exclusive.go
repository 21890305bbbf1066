package cniproto

import (
	"fmt"
	"net"
)

// maxHostRoutes bounds AddReply.HostRoutes.
const maxHostRoutes = 64

// validateExclusive checks the exclusive mode's part of an AddReply: a known Mode; in exclusive mode the ENI's
// MAC, its gateway, IP being its primary address, and the host routes.
func (r AddReply) validateExclusive() error {
	switch r.Mode {
	case "", ModeShared:
		return nil
	case ModeExclusive:
	default:
		return fmt.Errorf("Mode %q: expected %q or %q", clip(r.Mode), ModeShared, ModeExclusive)
	}
	if m, err := net.ParseMAC(r.ENI.MAC); err != nil || len(m) != 6 {
		return fmt.Errorf("ENI.MAC %q: expected the ENI's MAC (exclusive mode)", clip(r.ENI.MAC))
	}
	if !r.ENI.Gateway.Is4() {
		return fmt.Errorf("ENI.Gateway %v: expected the vSwitch gateway (exclusive mode)", r.ENI.Gateway)
	}
	if r.ENI.PrimaryIP != r.IP {
		return fmt.Errorf("ENI.PrimaryIP %v: expected the pod's address %v (exclusive mode: the ENI's primary)", r.ENI.PrimaryIP, r.IP)
	}
	if len(r.HostRoutes) > maxHostRoutes {
		return fmt.Errorf("HostRoutes: %d, expected at most %d", len(r.HostRoutes), maxHostRoutes)
	}
	for i, p := range r.HostRoutes {
		if !p.IsValid() || !p.Addr().Is4() || p.Bits() == 0 {
			return fmt.Errorf("HostRoutes[%d] %v: expected an IPv4 prefix other than the default", i, p)
		}
	}
	return nil
}
