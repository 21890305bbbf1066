package checkpoint

import (
	"fmt"
	"net/netip"
)

// Dual stack (the eni backend's ip_stack "dual"): a record may carry, beside its IPv4 address IP, the IPv6
// address of the same ENI handed to the same pod (Record.IPv6). The field is optional within version 2 (which had
// not shipped when it was added): a record without it is an IPv4-only allocation, and an older file loads as it
// is. The IPv6 address follows its IPv4 partner through every state (assigned, cooling down, reserved,
// quarantined): the pair is allocated, released and reconciled together.

// ipv6Problems lists what is wrong with a record's IPv6 field on its own.
func (r Record) ipv6Problems() []string {
	switch {
	case !r.IPv6.IsValid():
		return nil
	case !r.IPv6.Is6() || r.IPv6.Is4In6():
		return []string{fmt.Sprintf("ipv6: %s, expected an IPv6 address", r.IPv6)}
	case !r.IPv6.IsGlobalUnicast() || r.IPv6.Zone() != "": // not ::, loopback, link-local, multicast
		return []string{fmt.Sprintf("ipv6: %s, expected a global unicast IPv6 address without a zone", r.IPv6)}
	}
	return nil
}

// ipv6Dup reports records[i]'s IPv6 address when an earlier Assigned, Cooldown or Reserved record holds it too
// (Quarantined records may repeat one, as for IPv4); byIPv6 collects the addresses seen.
func ipv6Dup(byIPv6 map[netip.Addr]int, records []Record, i int) string {
	r := records[i]
	if !r.IPv6.IsValid() || !(r.State == Assigned || r.State == Cooldown || r.State == Reserved) {
		return ""
	}
	if j, dup := byIPv6[r.IPv6]; dup {
		return fmt.Sprintf("records[%d].ipv6: %s is already held by records[%d] (%s); an address is Assigned, Cooldown or Reserved once",
			i, r.IPv6, j, records[j].State)
	}
	byIPv6[r.IPv6] = i
	return ""
}
