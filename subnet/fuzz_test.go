package subnet

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"reflect"
	"testing"
)

// FuzzParseLeaseKey: a lease key from the store (any string) is refused or read into prefixes of the right
// family whose canonical name is the key itself.
func FuzzParseLeaseKey(f *testing.F) {
	for _, s := range []string{"10.244.3.0-24", "10.244.3.0-24&fd00:10:244:3::-64", "0.0.0.0-0&fd00::-64", "0.0.0.0-0",
		"10.244.3.1-24", "10.244.3.0-33", "999.1.1.1-8", "10.0.0.0-8&FD00::-64", "10.0.0.0-8&::ffff:1.2.3.4-128", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		v4, v6, err := ParseLeaseKey(key)
		if err != nil {
			return
		}
		if !v4.IsValid() && !v6.IsValid() {
			t.Fatalf("%q: no subnet and no error", key)
		}
		if (v4.IsValid() && !v4.Addr().Is4()) || (v6.IsValid() && (!v6.Addr().Is6() || v6.Addr().Is4In6())) {
			t.Fatalf("%q: families %v %v", key, v4, v6)
		}
		if LeaseKey(v4, v6) != key {
			t.Fatalf("%q reads as %v %v, whose key is %q", key, v4, v6, LeaseKey(v4, v6))
		}
	})
}

// FuzzLeaseAttrs: a lease value from the store is refused or read into attributes that write back in upstream's
// form and read again to the same attributes.
func FuzzLeaseAttrs(f *testing.F) {
	for _, s := range []string{`{"PublicIP":"10.0.0.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:ff"}}`,
		`{"PublicIP":"0.0.0.0","PublicIPv6":"fd00::1","BackendType":"host-gw"}`, `{"PublicIP":"::ffff:10.0.0.1"}`, `{"PublicIPv6":"10.0.0.1"}`,
		`{"BackendData":"x"}`, `null`, `[]`, `{"PublicIP":1}`, `{"PublicIPv6":"fe80::1%eth0"}`, `{"PublicIPv6":"::ffff:10.0.0.1"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var a LeaseAttrs
		if err := json.Unmarshal(data, &a); err != nil {
			return
		}
		if (a.PublicIP.IsValid() && !a.PublicIP.Is4()) || (a.PublicIPv6.IsValid() && (!a.PublicIPv6.Is6() || a.PublicIPv6.Is4In6())) {
			t.Fatalf("%s: public addresses %v %v", data, a.PublicIP, a.PublicIPv6)
		}
		out, err := json.Marshal(a)
		if err != nil {
			t.Fatalf("%s read but does not write back: %v", data, err)
		}
		var b LeaseAttrs
		if err := json.Unmarshal(out, &b); err != nil {
			t.Fatalf("%s wrote %s, which does not read back: %v", data, out, err)
		}
		if a.PublicIP != b.PublicIP || a.PublicIPv6 != b.PublicIPv6 || a.BackendType != b.BackendType ||
			!sameJSON(a.BackendData, b.BackendData) || !sameJSON(a.BackendV6Data, b.BackendV6Data) {
			t.Fatalf("%s: %+v wrote %s and read back %+v", data, a, out, b)
		}
	})
}

// sameJSON tells whether two JSON texts mean the same value: the writer escapes <, > and & as upstream's
// json.Marshal does (\u0026), so equal values need not be equal bytes.
func sameJSON(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b) || string(a) == "null" || string(b) == "null"
	}
	decode := func(m json.RawMessage) (any, bool) {
		d := json.NewDecoder(bytes.NewReader(m))
		d.UseNumber()
		var v any
		return v, d.Decode(&v) == nil
	}
	x, okx := decode(a)
	y, oky := decode(b)
	return okx && oky && reflect.DeepEqual(x, y)
}

// FuzzParseEnv: subnet.env (the CNI plugin's input) is refused or read into subnets of the right family inside
// their networks and a usable MTU, and what is read renders and reads back to the same values.
func FuzzParseEnv(f *testing.F) {
	for _, s := range []string{
		"FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
		"FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_IPV6_NETWORK=fd00:1::/56\nFLANNEL_IPV6_SUBNET=fd00:1:0:17::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n",
		"FLANNEL_NETWORK=fd00::/56\nFLANNEL_SUBNET=fd00::1/64\nFLANNEL_MTU=1450\n",
		"FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.2.17.1/24\nFLANNEL_MTU=-1\n",
		"# comment\n\nFLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/8\nFLANNEL_MTU=0\n",
		"garbage", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ParseEnv(data, "subnet.env")
		if err != nil {
			return
		}
		checkEnv(t, data, e)
		again, err := ParseEnv(e.Render(), "rendered")
		if err != nil {
			t.Fatalf("%q read as %+v, which renders as %q that does not read back: %v", data, e, e.Render(), err)
		}
		checkEnv(t, e.Render(), again)
		if string(again.Render()) != string(e.Render()) {
			t.Fatalf("%q: render is not stable: %q then %q", data, e.Render(), again.Render())
		}
	})
}

func checkEnv(t *testing.T, data []byte, e Env) {
	t.Helper()
	inside := func(nw, sn netip.Prefix, v4 bool) bool {
		return nw.IsValid() && sn.IsValid() && nw.Addr().Is4() == v4 && sn.Addr().Is4() == v4 && nw.Bits() <= sn.Bits() && nw.Contains(sn.Addr())
	}
	if e.EnableIPv4 && !inside(e.Network, e.Subnet, true) {
		t.Fatalf("%q: IPv4 subnet %v not inside network %v", data, e.Subnet, e.Network)
	}
	if e.EnableIPv6 && !inside(e.IPv6Network, e.IPv6Subnet, false) {
		t.Fatalf("%q: IPv6 subnet %v not inside network %v", data, e.IPv6Subnet, e.IPv6Network)
	}
	if e.MTU < MinEnvMTU || e.MTU > MaxEnvMTU {
		t.Fatalf("%q: MTU %d", data, e.MTU)
	}
}
