package subnet

import (
	"errors"
	"math/big"
	"math/rand/v2"
	"net/netip"
)

// ErrNoFreeSubnet is returned when every subnet between SubnetMin and SubnetMax is taken.
var ErrNoFreeSubnet = errors.New("no free subnet left in the network")

// SubnetRange is the allocatable subnets of one family: length Len from Min to Max inclusive.
type SubnetRange struct {
	Min, Max netip.Addr
	Len      int
}

// V4Range and V6Range give the configured allocation ranges (after ValidateEtcd).
func (c *Config) V4Range() SubnetRange { return SubnetRange{c.SubnetMin, c.SubnetMax, c.SubnetLen} }
func (c *Config) V6Range() SubnetRange {
	return SubnetRange{c.IPv6SubnetMin, c.IPv6SubnetMax, c.IPv6SubnetLen}
}

// Contains tells whether p is one of the range's subnets.
func (r SubnetRange) Contains(p netip.Prefix) bool {
	if !p.IsValid() || p.Bits() != r.Len || p.Masked() != p {
		return false
	}
	a := p.Addr()
	return a.Is4() == r.Min.Is4() && !a.Less(r.Min) && !r.Max.Less(a)
}

// count is the number of subnets in the range.
func (r SubnetRange) count() *big.Int {
	lo := new(big.Int).SetBytes(r.Min.AsSlice())
	hi := new(big.Int).SetBytes(r.Max.AsSlice())
	n := hi.Sub(hi, lo)
	n.Rsh(n, uint(r.Min.BitLen()-r.Len))
	return n.Add(n, big.NewInt(1))
}

func (r SubnetRange) at(i *big.Int) netip.Prefix {
	x := new(big.Int).SetBytes(r.Min.AsSlice())
	x.Add(x, new(big.Int).Lsh(i, uint(r.Min.BitLen()-r.Len)))
	return netip.PrefixFrom(addrFromInt(x, r.Min.BitLen()), r.Len)
}

// Taken is the set of prefixes in use, asked whether a candidate subnet of one length overlaps any of them.
// Stored leases may have another length than the current SubnetLen (the configuration changed), so overlap,
// not equality, is what counts, as upstream's allocator checks.
type Taken struct {
	bits   int                   // the candidates' prefix length
	narrow map[netip.Prefix]bool // prefixes at least as long as bits, widened to bits
	wide   map[netip.Prefix]bool // shorter prefixes, as they are
	widths map[int]bool          // the lengths present in wide
}

// NewTaken returns an empty set for candidates of length bits.
func NewTaken(bits int) *Taken {
	return &Taken{bits: bits, narrow: map[netip.Prefix]bool{}, wide: map[netip.Prefix]bool{}, widths: map[int]bool{}}
}

// Add marks p as used; invalid prefixes are ignored.
func (t *Taken) Add(p netip.Prefix) {
	if !p.IsValid() {
		return
	}
	if p.Bits() >= t.bits {
		t.narrow[netip.PrefixFrom(p.Addr(), t.bits).Masked()] = true
		return
	}
	t.wide[p.Masked()] = true
	t.widths[p.Bits()] = true
}

// Has tells whether the candidate c (of length bits) overlaps a used prefix.
func (t *Taken) Has(c netip.Prefix) bool {
	if t.narrow[c] {
		return true
	}
	for b := range t.widths {
		if t.wide[netip.PrefixFrom(c.Addr(), b).Masked()] {
			return true
		}
	}
	return false
}

// PickFree returns a random subnet of the range that overlaps nothing in taken.
func (r SubnetRange) PickFree(taken *Taken) (netip.Prefix, error) {
	n := r.count()
	if n.Sign() <= 0 {
		return netip.Prefix{}, ErrNoFreeSubnet
	}
	// Random probes first: cheap while the range is mostly free.
	for i := 0; i < 64; i++ {
		idx := randBelow(n)
		if p := r.at(idx); !taken.Has(p) {
			return p, nil
		}
	}
	// Then a bounded scan from a random start.
	start := randBelow(n)
	limit := big.NewInt(1 << 22)
	if n.Cmp(limit) < 0 {
		limit = n
	}
	for i := big.NewInt(0); i.Cmp(limit) < 0; i.Add(i, big.NewInt(1)) {
		idx := new(big.Int).Add(start, i)
		idx.Mod(idx, n)
		if p := r.at(idx); !taken.Has(p) {
			return p, nil
		}
	}
	return netip.Prefix{}, ErrNoFreeSubnet
}

// randBelow returns a uniform random integer in [0, n).
func randBelow(n *big.Int) *big.Int {
	if n.IsUint64() {
		return new(big.Int).SetUint64(rand.Uint64N(n.Uint64()))
	}
	// Wider than 64 bits (huge IPv6 ranges): rejection-sample random bytes.
	b := make([]byte, (n.BitLen()+7)/8)
	for {
		for i := range b {
			b[i] = byte(rand.Uint32())
		}
		b[0] &= byte(0xff >> (len(b)*8 - n.BitLen()))
		if x := new(big.Int).SetBytes(b); x.Cmp(n) < 0 {
			return x
		}
	}
}
