package subnet

import (
	"net/netip"
	"strconv"
)

// LeaseKey names a lease as upstream does under <prefix>/subnets.
func LeaseKey(v4, v6 netip.Prefix) string {
	k := func(p netip.Prefix) string { return p.Masked().Addr().String() + "-" + strconv.Itoa(p.Bits()) }
	switch {
	case v4.IsValid() && v6.IsValid():
		return k(v4) + "&" + k(v6)
	case v6.IsValid():
		return k(v6)
	default:
		return k(v4)
	}
}
