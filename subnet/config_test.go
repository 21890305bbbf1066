package subnet

import (
	"encoding/json"
	"net/netip"
	"reflect"
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
		{name: "trailing garbage", in: `{"Network":"10.0.0.0/16"} {}`, err: "net-conf.json"},
		{name: "SubnetLen out of range", in: `{"Network":"10.0.0.0/16","SubnetLen":40}`, err: "SubnetLen: 40 is not a prefix length"},
		{name: "negative SubnetLen", in: `{"Network":"10.0.0.0/16","SubnetLen":-1}`, err: "SubnetLen: -1"},
		{name: "IPv6SubnetLen out of range", in: `{"Network":"10.0.0.0/16","IPv6SubnetLen":129}`, err: "IPv6SubnetLen: 129"},
		{name: "SubnetMin unaligned", in: `{"Network":"10.0.0.0/16","SubnetMin":"10.0.1.1"}`, err: "SubnetMin: 10.0.1.1 is not aligned to the subnet length /24"},
		{name: "SubnetMin not an address", in: `{"Network":"10.0.0.0/16","SubnetMin":"ten"}`, err: `SubnetMin: "ten" is not an IPv4 address`},
		{name: "SubnetMax outside", in: `{"Network":"10.0.0.0/16","SubnetMax":"10.1.0.0"}`, err: "SubnetMax: 10.1.0.0 is not within 10.0.0.0/16"},
		{name: "IPv4 in IPv6Network", in: `{"Network":"10.0.0.0/16","EnableIPv6":true,"IPv6Network":"10.1.0.0/16"}`, err: `IPv6Network: "10.1.0.0/16" is not an IPv6 CIDR`},
		{name: "v6 network too small", in: `{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00::/125"}`, err: "IPv6Network: /125 is too small"},
		{name: "v6 fewer than four subnets", in: `{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00::/48","IPv6SubnetLen":49}`, err: "IPv6SubnetLen: 49 leaves fewer than four subnets"},
		{name: "v6 SubnetMin outside", in: `{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00::/48","IPv6SubnetMin":"fd01::"}`, err: "IPv6SubnetMin: fd01:: is not within fd00::/48"},
		{name: "v6 SubnetMax unaligned", in: `{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00::/48","IPv6SubnetMax":"fd00:0:0:5::1"}`, err: "IPv6SubnetMax: fd00:0:0:5::1 is not aligned"},
		{name: "both families' errors are reported", in: `{"Network":"10.0.0.0/16","SubnetLen":31,"EnableIPv6":true}`, err: "IPv6Network: required"},
		{name: "0.0.0.0 SubnetMin means unset, as upstream", in: `{"Network":"10.0.0.0/16","SubnetMin":"0.0.0.0","SubnetMax":"0.0.0.0"}`, check: func(t *testing.T, c *Config) {
			if c.SubnetMin.String() != "10.0.1.0" || c.SubnetMax.String() != "10.0.255.0" {
				t.Errorf("min %s max %s", c.SubnetMin, c.SubnetMax)
			}
		}},
		{name: "explicit range kept", in: `{"Network":"10.0.0.0/8","SubnetLen":20,"SubnetMin":"10.16.0.0","SubnetMax":"10.32.0.0"}`, check: func(t *testing.T, c *Config) {
			if c.SubnetLen != 20 || c.SubnetMin.String() != "10.16.0.0" || c.SubnetMax.String() != "10.32.0.0" {
				t.Errorf("len %d min %s max %s", c.SubnetLen, c.SubnetMin, c.SubnetMax)
			}
		}},
		{name: "unmasked Network is masked", in: `{"Network":"10.244.7.1/16"}`, check: func(t *testing.T, c *Config) {
			if c.Network.String() != "10.244.0.0/16" {
				t.Errorf("network %s", c.Network)
			}
		}},
		{name: "EnableIPv4 null keeps the default", in: `{"Network":"10.0.0.0/16","EnableIPv4":null}`, check: func(t *testing.T, c *Config) {
			if !c.EnableIPv4 {
				t.Error("EnableIPv4 false")
			}
		}},
		{name: "Backend without Type defaults to vxlan and is kept", in: `{"Network":"10.0.0.0/16","Backend":{"VNI":4}}`, check: func(t *testing.T, c *Config) {
			if c.BackendType != "vxlan" || !c.BackendDefaulted || string(c.Backend) != `{"VNI":4}` {
				t.Errorf("type %q defaulted %v raw %s", c.BackendType, c.BackendDefaulted, c.Backend)
			}
		}},
		{name: "Backend raw object is kept verbatim", in: `{"Network":"10.0.0.0/16","Backend":{"Type":"vxlan", "Port":4789,"DirectRouting":true}}`, check: func(t *testing.T, c *Config) {
			if string(c.Backend) != `{"Type":"vxlan", "Port":4789,"DirectRouting":true}` || c.BackendDefaulted {
				t.Errorf("raw %s defaulted %v", c.Backend, c.BackendDefaulted)
			}
		}},
		{name: "EnableNFTables and unknown keys", in: `{"Network":"10.0.0.0/16","enablenftables":true,"Whatever":[1]}`, check: func(t *testing.T, c *Config) {
			if !c.EnableNFTables {
				t.Error("EnableNFTables not read")
			}
		}},
		{name: "v6 /63 gets /65", in: `{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00::/63"}`, check: func(t *testing.T, c *Config) {
			if c.IPv6SubnetLen != 65 || c.IPv6SubnetMin.String() != "fd00::8000:0:0:0" || c.IPv6SubnetMax.String() != "fd00:0:0:1:8000::" {
				t.Errorf("len %d min %s max %s", c.IPv6SubnetLen, c.IPv6SubnetMin, c.IPv6SubnetMax)
			}
		}},
		{name: "v6 /62 gets /64", in: `{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00::/62"}`, check: func(t *testing.T, c *Config) {
			if c.IPv6SubnetLen != 64 || c.IPv6SubnetMax.String() != "fd00:0:0:3::" {
				t.Errorf("len %d max %s", c.IPv6SubnetLen, c.IPv6SubnetMax)
			}
		}},
		{name: "v6 range wider than 64 bits of subnets", in: `{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00::/8","IPv6SubnetLen":120}`, check: func(t *testing.T, c *Config) {
			if c.IPv6SubnetMin.String() != "fd00::100" || c.IPv6SubnetMax.String() != "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ff00" {
				t.Errorf("min %s max %s", c.IPv6SubnetMin, c.IPv6SubnetMax)
			}
		}},
		{name: "/28 is the smallest network", in: `{"Network":"10.0.0.0/28"}`, check: func(t *testing.T, c *Config) {
			if c.SubnetLen != 30 || c.SubnetMin.String() != "10.0.0.4" || c.SubnetMax.String() != "10.0.0.12" {
				t.Errorf("len %d min %s max %s", c.SubnetLen, c.SubnetMin, c.SubnetMax)
			}
		}},
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

func TestValidateEtcdNoFamily(t *testing.T) {
	c := &Config{Network: netip.MustParsePrefix("10.0.0.0/16")}
	if err := c.ValidateEtcd(); err == nil || !strings.Contains(err.Error(), "EnableIPv4, EnableIPv6") {
		t.Fatalf("err = %v", err)
	}
}

func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{`{"Network":"10.244.0.0/16"}`, `{"Network":"10.0.0.0/8","SubnetLen":20,"Backend":{"Type":"host-gw"}}`,
		`{"EnableIPv6":true,"IPv6Network":"fd00::/56","Network":"10.0.0.0/24","SubnetMin":"10.0.0.64"}`, `{}`, `[]`,
		`{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00::/120","IPv6SubnetMax":"fd00::c0"}`,
		`{"network":"10.0.0.0/28","subnetmin":"0.0.0.0","backend":{"type":"vxlan","vni":2}}`} {
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
		checkRange := func(nw netip.Prefix, slen int, lo, hi netip.Addr, bits int) {
			t.Helper()
			if slen > bits-2 || slen < nw.Bits()+2 {
				t.Fatalf("validated SubnetLen %d for %v", slen, nw)
			}
			if !nw.Contains(lo) || !nw.Contains(hi) || hi.Less(lo) {
				t.Fatalf("validated config has bad range %v..%v in %v", lo, hi, nw)
			}
			for _, a := range []netip.Addr{lo, hi} {
				if netip.PrefixFrom(a, slen).Masked().Addr() != a {
					t.Fatalf("%v not aligned to /%d", a, slen)
				}
			}
		}
		if c.EnableIPv4 {
			checkRange(c.Network, c.SubnetLen, c.SubnetMin, c.SubnetMax, 32)
		}
		if c.EnableIPv6 {
			checkRange(c.IPv6Network, c.IPv6SubnetLen, c.IPv6SubnetMin, c.IPv6SubnetMax, 128)
		}
		// The effective configuration, written out and read back, is the same configuration.
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseConfig(b)
		if err == nil {
			err = back.ValidateEtcd()
		}
		if err != nil {
			t.Fatalf("re-parse of %s: %v", b, err)
		}
		back.Backend, c.Backend = nil, nil
		if !reflect.DeepEqual(back, c) {
			t.Fatalf("round trip via %s:\n got %+v\nwant %+v", b, back, c)
		}
	})
}
