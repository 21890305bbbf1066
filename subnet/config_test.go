package subnet

import (
	"strings"
	"testing"
)

func TestParseAndValidateEtcd(t *testing.T) {
	cases := []struct {
		name, in, err string
		check         func(*testing.T, *Config)
	}{
		{name: "minimal", in: `{"Network":"10.244.0.0/16"}`, check: func(t *testing.T, c *Config) {
			if c.SubnetLen != 24 || c.SubnetMin.String() != "10.244.1.0" || c.SubnetMax.String() != "10.244.255.0" {
				t.Errorf("defaults: len %d min %s max %s", c.SubnetLen, c.SubnetMin, c.SubnetMax)
			}
			if c.BackendType != "vxlan" || !c.BackendDefaulted || !c.EnableIPv4 || c.EnableIPv6 {
				t.Errorf("backend %q defaulted %v v4 %v v6 %v", c.BackendType, c.BackendDefaulted, c.EnableIPv4, c.EnableIPv6)
			}
		}},
		{name: "keys are case-insensitive", in: `{"network":"10.1.0.0/16","backend":{"type":"host-gw"}}`, check: func(t *testing.T, c *Config) {
			if c.Network.String() != "10.1.0.0/16" || c.BackendType != "host-gw" || c.BackendDefaulted {
				t.Errorf("got %v %q", c.Network, c.BackendType)
			}
		}},
		{name: "narrow network gets prefix+2", in: `{"Network":"10.0.0.0/24"}`, check: func(t *testing.T, c *Config) {
			if c.SubnetLen != 26 || c.SubnetMin.String() != "10.0.0.64" || c.SubnetMax.String() != "10.0.0.192" {
				t.Errorf("len %d min %s max %s", c.SubnetLen, c.SubnetMin, c.SubnetMax)
			}
		}},
		{name: "/22 still defaults to 24", in: `{"Network":"10.0.0.0/22"}`, check: func(t *testing.T, c *Config) {
			if c.SubnetLen != 24 {
				t.Errorf("len %d", c.SubnetLen)
			}
		}},
		{name: "/23 gets 25", in: `{"Network":"10.0.0.0/23"}`, check: func(t *testing.T, c *Config) {
			if c.SubnetLen != 25 {
				t.Errorf("len %d", c.SubnetLen)
			}
		}},
		{name: "/29 too small", in: `{"Network":"10.0.0.0/29"}`, err: "Network: /29 is too small"},
		{name: "SubnetLen 31", in: `{"Network":"10.0.0.0/16","SubnetLen":31}`, err: "SubnetLen: must be less than /31"},
		{name: "fewer than four subnets", in: `{"Network":"10.0.0.0/16","SubnetLen":17}`, err: "at least four subnets"},
		{name: "missing Network", in: `{}`, err: "Network: required"},
		{name: "bad Network", in: `{"Network":"10.0.0.0"}`, err: `Network: "10.0.0.0" is not an IPv4 CIDR`},
		{name: "v6 in Network", in: `{"Network":"fd00::/48"}`, err: "Network:"},
		{name: "SubnetMin outside", in: `{"Network":"10.0.0.0/16","SubnetMin":"10.1.0.0"}`, err: "SubnetMin: 10.1.0.0 is not within"},
		{name: "SubnetMax unaligned", in: `{"Network":"10.0.0.0/16","SubnetMax":"10.0.9.7"}`, err: "SubnetMax: 10.0.9.7 is not aligned"},
		{name: "SubnetMax below min", in: `{"Network":"10.0.0.0/16","SubnetMin":"10.0.9.0","SubnetMax":"10.0.3.0"}`, err: "below"},
		{name: "bad SubnetLen type", in: `{"Network":"10.0.0.0/16","SubnetLen":"24"}`, err: "SubnetLen: expected a JSON int"},
		{name: "malformed", in: `{"Network":`, err: "net-conf.json"},
		{name: "no family", in: `{"EnableIPv4":false}`, err: "at least one address family"},
		{name: "dual stack", in: `{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244::/56"}`, check: func(t *testing.T, c *Config) {
			if c.IPv6SubnetLen != 64 || c.IPv6SubnetMin.String() != "fd00:10:244:1::" || c.IPv6SubnetMax.String() != "fd00:10:244:ff::" {
				t.Errorf("v6 len %d min %s max %s", c.IPv6SubnetLen, c.IPv6SubnetMin, c.IPv6SubnetMax)
			}
		}},
		{name: "v6 only", in: `{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00::/120"}`, check: func(t *testing.T, c *Config) {
			if c.IPv6SubnetLen != 122 {
				t.Errorf("v6 len %d", c.IPv6SubnetLen)
			}
		}},
		{name: "v6 missing network", in: `{"Network":"10.0.0.0/16","EnableIPv6":true}`, err: "IPv6Network: required"},
		{name: "v6 SubnetLen 127", in: `{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00::/48","IPv6SubnetLen":127}`, err: "IPv6SubnetLen: must be less than /127"},
		{name: "backend not object", in: `{"Network":"10.0.0.0/16","Backend":"vxlan"}`, err: "Backend: expected an object"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := ParseConfig([]byte(c.in))
			if err == nil {
				err = cfg.ValidateEtcd()
			}
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, cfg)
		})
	}
}

func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{`{"Network":"10.244.0.0/16"}`, `{"Network":"10.0.0.0/8","SubnetLen":20,"Backend":{"Type":"host-gw"}}`,
		`{"EnableIPv6":true,"IPv6Network":"fd00::/56","Network":"10.0.0.0/24","SubnetMin":"10.0.0.64"}`, `{}`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		if c.BackendType == "" {
			t.Fatal("BackendType empty after parse")
		}
		if c.ValidateEtcd() != nil {
			return
		}
		if c.EnableIPv4 {
			if !c.Network.Contains(c.SubnetMin) || !c.Network.Contains(c.SubnetMax) || c.SubnetMax.Less(c.SubnetMin) {
				t.Fatalf("validated config has bad range %v..%v in %v", c.SubnetMin, c.SubnetMax, c.Network)
			}
			if c.SubnetLen > 30 || c.SubnetLen < c.Network.Bits()+2 {
				t.Fatalf("validated SubnetLen %d for %v", c.SubnetLen, c.Network)
			}
		}
	})
}
