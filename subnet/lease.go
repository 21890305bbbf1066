package subnet

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
)

// LeaseKey names a lease as upstream does under <prefix>/subnets: "10.244.3.0-24", and in dual stack
// "10.244.3.0-24&fd00:10:244:3::-64". An IPv6-only lease carries upstream's empty IPv4 part, "0.0.0.0-0&...".
func LeaseKey(v4, v6 netip.Prefix) string {
	k4 := "0.0.0.0-0"
	if v4.IsValid() {
		k4 = v4.Masked().Addr().String() + "-" + strconv.Itoa(v4.Bits())
	}
	if !v6.IsValid() {
		return k4
	}
	return k4 + "&" + v6.Masked().Addr().String() + "-" + strconv.Itoa(v6.Bits())
}

var keyRE = regexp.MustCompile(`^(\d+\.\d+\.\d+\.\d+)-(\d+)(?:&([a-fA-F\d:]+)-(\d+))?$`)

// ParseLeaseKey is the inverse of LeaseKey.
func ParseLeaseKey(key string) (v4, v6 netip.Prefix, err error) {
	m := keyRE.FindStringSubmatch(key)
	if m == nil {
		return v4, v6, fmt.Errorf("lease key %q: expected a.b.c.d-len or a.b.c.d-len&ipv6-len", key)
	}
	if v4, err = netip.ParsePrefix(m[1] + "/" + m[2]); err != nil {
		return v4, v6, fmt.Errorf("lease key %q: %w", key, err)
	}
	if v4.Bits() == 0 && v4.Addr().IsUnspecified() {
		v4 = netip.Prefix{}
	}
	if m[3] != "" {
		if v6, err = netip.ParsePrefix(m[3] + "/" + m[4]); err != nil || !v6.Addr().Is6() {
			return v4, v6, fmt.Errorf("lease key %q: bad IPv6 part", key)
		}
	}
	if !v4.IsValid() && !v6.IsValid() {
		return v4, v6, fmt.Errorf("lease key %q: no subnet", key)
	}
	// Only canonical names (masked, lower case, shortest IPv6 form) are accepted, so that Lease.Key() of a
	// parsed lease is always the name it is stored under.
	if want := LeaseKey(v4, v6); want != key {
		return netip.Prefix{}, netip.Prefix{}, fmt.Errorf("lease key %q: not in canonical form (want %q)", key, want)
	}
	return v4, v6, nil
}

// wireAttrs is upstream's JSON form of LeaseAttrs: PublicIP is always a string ("0.0.0.0" when unset),
// PublicIPv6 is null when unset, the backend fields are omitted when empty.
type wireAttrs struct {
	PublicIP      string
	PublicIPv6    *string
	BackendType   string          `json:",omitempty"`
	BackendData   json.RawMessage `json:",omitempty"`
	BackendV6Data json.RawMessage `json:",omitempty"`
}

// MarshalJSON writes the attributes exactly as upstream flanneld stores them in etcd.
func (a LeaseAttrs) MarshalJSON() ([]byte, error) {
	w := wireAttrs{PublicIP: "0.0.0.0", BackendType: a.BackendType, BackendData: a.BackendData, BackendV6Data: a.BackendV6Data}
	if a.PublicIP.IsValid() {
		w.PublicIP = a.PublicIP.String()
	}
	if a.PublicIPv6.IsValid() {
		s := a.PublicIPv6.String()
		w.PublicIPv6 = &s
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads upstream's form; "0.0.0.0" and null mean unset.
func (a *LeaseAttrs) UnmarshalJSON(b []byte) error {
	var w wireAttrs
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*a = LeaseAttrs{BackendType: w.BackendType, BackendData: w.BackendData, BackendV6Data: w.BackendV6Data}
	if w.PublicIP != "" && w.PublicIP != "0.0.0.0" {
		ip, err := netip.ParseAddr(w.PublicIP)
		if err != nil || !ip.Is4() {
			return fmt.Errorf("PublicIP: %q is not an IPv4 address", w.PublicIP)
		}
		a.PublicIP = ip
	}
	if w.PublicIPv6 != nil && *w.PublicIPv6 != "" {
		ip, err := netip.ParseAddr(*w.PublicIPv6)
		if err != nil || !ip.Is6() || ip.Is4In6() || ip.Zone() != "" {
			return fmt.Errorf("PublicIPv6: %q is not an IPv6 address", *w.PublicIPv6)
		}
		a.PublicIPv6 = ip
	}
	return nil
}
