package subnet

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"sync"
)

// Config is net-conf.json: the cluster-wide network configuration, as upstream flanneld reads it from
// <prefix>/config in etcd or from --net-config-path in Kubernetes mode. JSON keys match case-insensitively.
type Config struct {
	EnableIPv4     bool
	EnableIPv6     bool
	EnableNFTables bool
	Network        netip.Prefix // IPv4 cluster network
	SubnetMin      netip.Addr
	SubnetMax      netip.Addr
	SubnetLen      int
	IPv6Network    netip.Prefix
	IPv6SubnetMin  netip.Addr
	IPv6SubnetMax  netip.Addr
	IPv6SubnetLen  int
	BackendType    string          // Backend.Type, defaulted to "vxlan"
	Backend        json.RawMessage // the whole Backend object, for the backend to decode its own fields
	// BackendDefaulted is true when net-conf.json gave no Backend.Type and vxlan was chosen.
	BackendDefaulted bool
	// NetworkPolicy is weft's EnableNetworkPolicy (true when absent; upstream ignores the key): whether weftd
	// enforces NetworkPolicy in Kubernetes mode (the --network-policy flag can turn it off too).
	NetworkPolicy bool
}

// DefaultBackend is the backend used when net-conf.json names none. Upstream flanneld picks "udp" in that case
// although its documentation says vxlan; weft follows the documentation.
const DefaultBackend = "vxlan"

// rawConfig mirrors the JSON. Strings are parsed by hand so that errors can name the field.
type rawConfig struct {
	EnableIPv4     *bool
	EnableIPv6     bool
	EnableNFTables bool
	Network        string
	SubnetMin      string
	SubnetMax      string
	SubnetLen      int
	IPv6Network    string
	IPv6SubnetMin  string
	IPv6SubnetMax  string
	IPv6SubnetLen  int
	Backend        json.RawMessage

	EnableNetworkPolicy *bool
}

// ParseConfig parses net-conf.json. It checks syntax and address forms only; ValidateEtcd adds the etcd-mode
// rules and defaults.
func ParseConfig(data []byte) (*Config, error) {
	var r rawConfig
	// json.Unmarshal (not a Decoder) so that trailing garbage is an error, as it is for upstream.
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("net-conf.json: %w", describeJSONError(err))
	}
	c := &Config{
		EnableIPv4: r.EnableIPv4 == nil || *r.EnableIPv4, EnableIPv6: r.EnableIPv6, EnableNFTables: r.EnableNFTables,
		SubnetLen: r.SubnetLen, IPv6SubnetLen: r.IPv6SubnetLen, Backend: r.Backend,
		NetworkPolicy: r.EnableNetworkPolicy == nil || *r.EnableNetworkPolicy,
	}
	var errs []error
	prefix := func(field, s string, v6 bool, dst *netip.Prefix) {
		if s == "" {
			return
		}
		p, err := netip.ParsePrefix(s)
		if err != nil || p.Addr().Is6() != v6 || p.Addr().Is4In6() {
			want := "an IPv4 CIDR such as 10.244.0.0/16"
			if v6 {
				want = "an IPv6 CIDR such as fd00:10:244::/56"
			}
			errs = append(errs, fmt.Errorf("%s: %q is not %s", field, s, want))
			return
		}
		*dst = p.Masked()
	}
	addr := func(field, s string, v6 bool, dst *netip.Addr) {
		if s == "" {
			return
		}
		a, err := netip.ParseAddr(s)
		if err == nil && a.IsUnspecified() && a.Is6() == v6 {
			return // upstream treats 0.0.0.0 (and ::) as "not set"
		}
		if err != nil || a.Is6() != v6 || a.Zone() != "" {
			fam := "IPv4"
			if v6 {
				fam = "IPv6"
			}
			errs = append(errs, fmt.Errorf("%s: %q is not an %s address", field, s, fam))
			return
		}
		*dst = a
	}
	prefix("Network", r.Network, false, &c.Network)
	prefix("IPv6Network", r.IPv6Network, true, &c.IPv6Network)
	addr("SubnetMin", r.SubnetMin, false, &c.SubnetMin)
	addr("SubnetMax", r.SubnetMax, false, &c.SubnetMax)
	addr("IPv6SubnetMin", r.IPv6SubnetMin, true, &c.IPv6SubnetMin)
	addr("IPv6SubnetMax", r.IPv6SubnetMax, true, &c.IPv6SubnetMax)
	if c.SubnetLen < 0 || c.SubnetLen > 32 {
		errs = append(errs, fmt.Errorf("SubnetLen: %d is not a prefix length from 0 to 32", c.SubnetLen))
	}
	if c.IPv6SubnetLen < 0 || c.IPv6SubnetLen > 128 {
		errs = append(errs, fmt.Errorf("IPv6SubnetLen: %d is not a prefix length from 0 to 128", c.IPv6SubnetLen))
	}
	if len(r.Backend) > 0 && string(r.Backend) != "null" {
		var b struct{ Type *string }
		if err := json.Unmarshal(r.Backend, &b); err != nil {
			errs = append(errs, fmt.Errorf("Backend: expected an object such as {\"Type\":\"vxlan\"}: %w", describeJSONError(err)))
		} else if b.Type != nil {
			c.BackendType = *b.Type
		}
	}
	if c.BackendType == "" {
		c.BackendType, c.BackendDefaulted = DefaultBackend, true
	}
	if !c.EnableIPv4 && !c.EnableIPv6 {
		errs = append(errs, errors.New("EnableIPv4, EnableIPv6: at least one address family must be enabled"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("net-conf.json: %w", err)
	}
	return c, nil
}

// MarshalJSON writes the configuration as net-conf.json with upstream's key names, leaving out what is unset,
// so that ParseConfig reads back the same Config. The daemon logs it as the effective configuration.
func (c *Config) MarshalJSON() ([]byte, error) {
	type out struct {
		EnableIPv4     bool
		EnableIPv6     bool            `json:",omitempty"`
		EnableNFTables bool            `json:",omitempty"`
		Network        string          `json:",omitempty"`
		SubnetMin      string          `json:",omitempty"`
		SubnetMax      string          `json:",omitempty"`
		SubnetLen      int             `json:",omitempty"`
		IPv6Network    string          `json:",omitempty"`
		IPv6SubnetMin  string          `json:",omitempty"`
		IPv6SubnetMax  string          `json:",omitempty"`
		IPv6SubnetLen  int             `json:",omitempty"`
		Backend        json.RawMessage `json:",omitempty"`

		EnableNetworkPolicy *bool `json:",omitempty"`
	}
	var np *bool
	if !c.NetworkPolicy {
		np = new(bool)
	}
	str := func(v interface{ IsValid() bool }) string {
		if !v.IsValid() {
			return ""
		}
		return v.(fmt.Stringer).String()
	}
	return json.Marshal(out{
		EnableIPv4: c.EnableIPv4, EnableIPv6: c.EnableIPv6, EnableNFTables: c.EnableNFTables,
		Network: str(c.Network), SubnetMin: str(c.SubnetMin), SubnetMax: str(c.SubnetMax), SubnetLen: c.SubnetLen,
		IPv6Network: str(c.IPv6Network), IPv6SubnetMin: str(c.IPv6SubnetMin), IPv6SubnetMax: str(c.IPv6SubnetMax),
		IPv6SubnetLen: c.IPv6SubnetLen, Backend: c.Backend, EnableNetworkPolicy: np,
	})
}

func describeJSONError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("%s: expected a JSON %s, got %s", te.Field, te.Type, te.Value)
	}
	return err
}

var (
	subnetlessMu sync.Mutex
	subnetless   = map[string]bool{}
)

// DeclareSubnetless records that the backend called name gives nodes no per-node subnet (pods get addresses
// another way, e.g. from ENIs), so its net-conf.json needs no Network. The backend registry calls it.
func DeclareSubnetless(name string) {
	subnetlessMu.Lock()
	defer subnetlessMu.Unlock()
	subnetless[name] = true
}

// PerNodeSubnets tells whether the configured backend leases a subnet to every node (every backend but those
// declared subnetless). Only then are Network / IPv6Network required.
func (c *Config) PerNodeSubnets() bool {
	subnetlessMu.Lock()
	defer subnetlessMu.Unlock()
	return !subnetless[c.BackendType]
}

// ValidateEtcd applies upstream's etcd-mode checks and fills in SubnetLen, SubnetMin and SubnetMax (and their
// IPv6 counterparts) where they are unset.
func (c *Config) ValidateEtcd() error {
	var errs []error
	if !c.EnableIPv4 && !c.EnableIPv6 {
		return errors.New("EnableIPv4, EnableIPv6: at least one address family must be enabled")
	}
	if c.EnableIPv4 {
		if !c.Network.IsValid() && !c.PerNodeSubnets() {
			// nothing to allocate from
		} else if !c.Network.IsValid() {
			errs = append(errs, errors.New("Network: required when EnableIPv4 is true (e.g. \"10.244.0.0/16\"): please define a correct Network parameter in the flannel config"))
		} else if err := checkFamily(c.Network, &c.SubnetLen, &c.SubnetMin, &c.SubnetMax, 32, 24, ""); err != nil {
			errs = append(errs, err)
		}
	}
	if c.EnableIPv6 {
		if !c.IPv6Network.IsValid() && !c.PerNodeSubnets() {
			// nothing to allocate from
		} else if !c.IPv6Network.IsValid() {
			errs = append(errs, errors.New("IPv6Network: required when EnableIPv6 is true (e.g. \"fd00:10:244::/56\"): please define a correct IPv6Network parameter in the flannel config"))
		} else if err := checkFamily(c.IPv6Network, &c.IPv6SubnetLen, &c.IPv6SubnetMin, &c.IPv6SubnetMax, 128, 64, "IPv6"); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checkFamily is upstream's rule for one family: SubnetLen at most bits-2 (/30, /126) and at least the network
// prefix + 2 (four subnets); unset, it is `def` for wide networks, else prefix+2.
func checkFamily(nw netip.Prefix, slen *int, smin, smax *netip.Addr, bits, def int, fam string) error {
	f := func(name string) string { return fam + name }
	if *slen == 0 {
		switch {
		case nw.Bits() <= def-2:
			*slen = def
		case nw.Bits() <= bits-4:
			*slen = nw.Bits() + 2
		default:
			return fmt.Errorf("%s: /%d is too small to split into subnets: network is too small. Minimum useful network prefix is /%d",
				f("Network"), nw.Bits(), bits-4)
		}
	}
	if *slen > bits-2 {
		return fmt.Errorf("%s: must be less than /%d (got %d)", f("SubnetLen"), bits-1, *slen)
	}
	if *slen < nw.Bits()+2 {
		return fmt.Errorf("%s: %d leaves fewer than four subnets in %s: the network must be able to accommodate at least four subnets",
			f("SubnetLen"), *slen, nw)
	}
	first := nextSubnet(netip.PrefixFrom(nw.Addr(), *slen))
	last := lastSubnet(nw, *slen)
	if !smin.IsValid() {
		*smin = first.Addr()
	} else {
		if !nw.Contains(*smin) {
			return fmt.Errorf("%s: %s is not within %s", f("SubnetMin"), *smin, nw)
		}
		if netip.PrefixFrom(*smin, *slen).Masked().Addr() != *smin {
			return fmt.Errorf("%s: %s is not aligned to the subnet length /%d", f("SubnetMin"), *smin, *slen)
		}
	}
	if !smax.IsValid() {
		*smax = last.Addr()
	} else {
		if !nw.Contains(*smax) {
			return fmt.Errorf("%s: %s is not within %s", f("SubnetMax"), *smax, nw)
		}
		if netip.PrefixFrom(*smax, *slen).Masked().Addr() != *smax {
			return fmt.Errorf("%s: %s is not aligned to the subnet length /%d", f("SubnetMax"), *smax, *slen)
		}
	}
	if smax.Less(*smin) {
		return fmt.Errorf("%s: %s is below %s %s", f("SubnetMax"), *smax, f("SubnetMin"), *smin)
	}
	return nil
}

// nextSubnet returns the subnet of the same length right after p.
func nextSubnet(p netip.Prefix) netip.Prefix {
	return netip.PrefixFrom(addOffset(p.Masked().Addr(), p.Bits(), 1), p.Bits())
}

// lastSubnet is the last subnet of length slen inside nw.
func lastSubnet(nw netip.Prefix, slen int) netip.Prefix {
	a := nw.Masked().Addr()
	x := new(big.Int).SetBytes(a.AsSlice())
	n := new(big.Int).Lsh(big.NewInt(1), uint(slen-nw.Bits())) // subnets in the network
	n.Sub(n, big.NewInt(1))
	x.Add(x, n.Lsh(n, uint(a.BitLen()-slen)))
	return netip.PrefixFrom(addrFromInt(x, a.BitLen()), slen)
}

// addOffset adds n subnets of length bits to a.
func addOffset(a netip.Addr, bits int, n uint64) netip.Addr {
	x := new(big.Int).SetBytes(a.AsSlice())
	step := new(big.Int).Lsh(new(big.Int).SetUint64(n), uint(a.BitLen()-bits))
	return addrFromInt(x.Add(x, step), a.BitLen())
}

func addrFromInt(x *big.Int, bitLen int) netip.Addr {
	b := make([]byte, bitLen/8)
	x.FillBytes(b)
	r, _ := netip.AddrFromSlice(b)
	return r
}
