package eni

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/internal/eni/pool"
)

func TestDualLimits(t *testing.T) {
	base := pool.Limits{InstanceType: "ecs.g7.large", ENIs: 2, AddrsPerENI: 6}
	v6 := aliyun.VSwitch{ID: "vsw-a", CIDR: netip.MustParsePrefix("10.0.0.0/24"), IPv6CIDR: netip.MustParsePrefix("2408:4005:300:a100::/64")}
	v4only := aliyun.VSwitch{ID: "vsw-b", CIDR: netip.MustParsePrefix("10.0.1.0/24")}
	typ := func(v6 int) aliyun.InstanceType {
		return aliyun.InstanceType{ID: "ecs.g7.large", ENIs: 3, IPv4PerENI: 6, IPv6PerENI: v6}
	}
	for _, c := range []struct {
		name   string
		l      pool.Limits
		t      aliyun.InstanceType
		vsws   []aliyun.VSwitch
		pods   int
		errHas []string
	}{
		{name: "v6 equal to v4", l: base, t: typ(6), vsws: []aliyun.VSwitch{v6}, pods: 12},
		{name: "fewer v6 bound the pairs", l: base, t: typ(4), vsws: []aliyun.VSwitch{v6}, pods: 8},
		{name: "more v6 than v4", l: base, t: typ(10), vsws: []aliyun.VSwitch{v6}, pods: 12},
		{name: "no IPv6 on the type", l: base, t: typ(0), vsws: []aliyun.VSwitch{v6},
			errHas: []string{`Backend.ip_stack: "dual"`, "ecs.g7.large", "EniIpv6AddressQuantity 0", "expected 1 or more"}},
		{name: "a vSwitch without IPv6", l: base, t: typ(6), vsws: []aliyun.VSwitch{v6, v4only},
			errHas: []string{`Backend.ip_stack: "dual"`, "vSwitch vsw-b has no IPv6 CIDR"}},
		{name: "an IPv4 prefix as IPv6 CIDR", l: base, t: typ(6), vsws: []aliyun.VSwitch{{ID: "vsw-c", IPv6CIDR: netip.MustParsePrefix("10.0.0.0/24")}},
			errHas: []string{"vSwitch vsw-c has no IPv6 CIDR"}},
		{name: "no vSwitch", l: base, t: typ(6), errHas: []string{"no vSwitch"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := dualLimits(c.l, c.t, c.vsws)
			if len(c.errHas) > 0 {
				if err == nil {
					t.Fatalf("accepted: %+v", got)
				}
				for _, h := range c.errHas {
					if !strings.Contains(err.Error(), h) {
						t.Errorf("error %q lacks %q", err, h)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.IPv6PerENI != c.t.IPv6PerENI || got.Pods() != c.pods {
				t.Fatalf("limits %+v (pods %d), want IPv6PerENI %d and %d pods", got, got.Pods(), c.t.IPv6PerENI, c.pods)
			}
		})
	}
}
