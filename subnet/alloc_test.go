package subnet

import (
	"errors"
	"net/netip"
	"testing"
)

func TestTakenOverlap(t *testing.T) {
	tk := NewTaken(24)
	for _, p := range []string{"10.0.5.0/24", "10.0.8.128/25", "10.0.16.0/22", "fd00::/64"} {
		tk.Add(netip.MustParsePrefix(p))
	}
	tk.Add(netip.Prefix{})
	for p, want := range map[string]bool{
		"10.0.5.0/24": true, "10.0.6.0/24": false,
		"10.0.8.0/24":  true, // holds a taken /25
		"10.0.18.0/24": true, // inside a taken /22
		"10.0.20.0/24": false, "10.0.15.0/24": false,
	} {
		if got := tk.Has(netip.MustParsePrefix(p)); got != want {
			t.Errorf("Has(%s) = %v, want %v", p, got, want)
		}
	}
}

func TestPickFreeExhaustsRange(t *testing.T) {
	r := SubnetRange{Min: netip.MustParseAddr("10.0.0.64"), Max: netip.MustParseAddr("10.0.0.192"), Len: 26}
	tk := NewTaken(26)
	seen := map[netip.Prefix]bool{}
	for i := 0; i < 3; i++ {
		p, err := r.PickFree(tk)
		if err != nil {
			t.Fatalf("pick %d: %v", i, err)
		}
		if seen[p] || !r.Contains(p) {
			t.Fatalf("pick %d: %v (seen %v)", i, p, seen)
		}
		seen[p] = true
		tk.Add(p)
	}
	if p, err := r.PickFree(tk); !errors.Is(err, ErrNoFreeSubnet) {
		t.Fatalf("full range gave %v, %v", p, err)
	}
}

func TestPickFreeHugeIPv6Range(t *testing.T) {
	c := &Config{EnableIPv6: true, IPv6Network: netip.MustParsePrefix("fd00::/8"), IPv6SubnetLen: 120}
	if err := c.ValidateEtcd(); err != nil {
		t.Fatal(err)
	}
	tk := NewTaken(120)
	tk.Add(netip.MustParsePrefix("fd00::/9")) // half the range is in use
	for i := 0; i < 50; i++ {
		p, err := c.V6Range().PickFree(tk)
		if err != nil || !c.V6Range().Contains(p) || tk.Has(p) {
			t.Fatalf("pick %v %v", p, err)
		}
		tk.Add(p)
	}
}
