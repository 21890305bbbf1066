package policy

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
)

func TestIPBlockPrefixes(t *testing.T) {
	cases := []struct {
		cidr   string
		except []string
		want   string
	}{
		{"10.0.0.0/24", nil, "[10.0.0.0/24]"},
		{"10.0.0.0/24", []string{"10.0.0.0/24"}, "[]"},
		{"10.0.0.0/24", []string{"10.0.0.128/25"}, "[10.0.0.0/25]"},
		{"10.0.0.0/30", []string{"10.0.0.1/32"}, "[10.0.0.0/32 10.0.0.2/31]"},
		{"10.0.0.0/24", []string{"10.0.0.0/26", "10.0.0.192/26"}, "[10.0.0.64/26 10.0.0.128/26]"},
		{"0.0.0.0/0", []string{"10.0.0.0/8"}, "[0.0.0.0/5 8.0.0.0/7 11.0.0.0/8 12.0.0.0/6 16.0.0.0/4 32.0.0.0/3 64.0.0.0/2 128.0.0.0/1]"},
		{"fd00::/126", []string{"fd00::3/128"}, "[fd00::/127 fd00::2/128]"},
	}
	for _, c := range cases {
		b := &IPBlock{CIDR: netip.MustParsePrefix(c.cidr)}
		for _, e := range c.except {
			b.Except = append(b.Except, netip.MustParsePrefix(e))
		}
		if got := fmt.Sprint(b.Prefixes()); got != c.want {
			t.Errorf("%s except %v: %s, want %s", c.cidr, c.except, got, c.want)
		}
	}
}

// The prefixes hold exactly the addresses Contains admits: checked on every address of random small blocks.
func TestIPBlockPrefixesAgreeWithContains(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 200; n++ {
		base := netip.AddrFrom4([4]byte{10, byte(r.IntN(256)), 0, 0})
		b := &IPBlock{CIDR: netip.PrefixFrom(base, 24)}
		for range r.IntN(5) {
			a := netip.AddrFrom4([4]byte{10, base.As4()[1], 0, byte(r.IntN(256))})
			p, _ := a.Prefix(24 + r.IntN(9))
			b.Except = append(b.Except, p)
		}
		ps := b.Prefixes()
		for i := range 256 {
			a := netip.AddrFrom4([4]byte{10, base.As4()[1], 0, byte(i)})
			in := 0
			for _, p := range ps {
				if p.Contains(a) {
					in++
				}
			}
			if want := b.Contains(a); (in == 1) != want || in > 1 {
				t.Fatalf("%v: %v in %d of %v, Contains %v", b, a, in, ps, want)
			}
		}
	}
}
