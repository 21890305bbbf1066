package policy

import (
	"net/netip"
	"slices"
)

// Prefixes is the block minus its exceptions as the fewest prefixes that cover exactly the addresses it holds,
// in address order: an nftables interval set's elements.
func (b *IPBlock) Prefixes() []netip.Prefix {
	var out []netip.Prefix
	subtract(b.CIDR, b.Except, &out)
	slices.SortFunc(out, func(x, y netip.Prefix) int { return x.Addr().Compare(y.Addr()) })
	return out
}

// subtract appends p minus the exceptions: p whole when no exception overlaps it, nothing when one covers it,
// else each half minus the exceptions.
func subtract(p netip.Prefix, except []netip.Prefix, out *[]netip.Prefix) {
	overlapping := false
	for _, e := range except {
		if e.Bits() <= p.Bits() && e.Contains(p.Addr()) {
			return
		}
		if p.Overlaps(e) {
			overlapping = true
		}
	}
	if !overlapping {
		*out = append(*out, p)
		return
	}
	lo, hi := halves(p)
	subtract(lo, except, out)
	subtract(hi, except, out)
}

// halves splits p (not a single address: an overlapping exception narrower than p exists) into its two halves.
func halves(p netip.Prefix) (netip.Prefix, netip.Prefix) {
	bits := p.Bits() + 1
	lo := netip.PrefixFrom(p.Addr(), bits)
	b := p.Addr().AsSlice()
	i := p.Bits() / 8
	b[i] |= 0x80 >> (p.Bits() % 8)
	a, _ := netip.AddrFromSlice(b)
	return lo, netip.PrefixFrom(a, bits)
}
