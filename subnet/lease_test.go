package subnet

import (
	"encoding/json"
	"net/netip"
	"testing"
)

func TestLeaseKey(t *testing.T) {
	v4 := netip.MustParsePrefix("10.244.3.0/24")
	v6 := netip.MustParsePrefix("fd00:10:244:3::/64")
	for _, c := range []struct {
		v4, v6 netip.Prefix
		key    string
	}{
		{v4, netip.Prefix{}, "10.244.3.0-24"},
		{v4, v6, "10.244.3.0-24&fd00:10:244:3::-64"},
		{netip.Prefix{}, v6, "0.0.0.0-0&fd00:10:244:3::-64"},
	} {
		if got := LeaseKey(c.v4, c.v6); got != c.key {
			t.Errorf("LeaseKey = %q, want %q", got, c.key)
		}
		g4, g6, err := ParseLeaseKey(c.key)
		if err != nil || g4 != c.v4 || g6 != c.v6 {
			t.Errorf("ParseLeaseKey(%q) = %v %v %v", c.key, g4, g6, err)
		}
	}
	for _, bad := range []string{"", "10.244.3.0", "10.244.3.0-24&", "config", "10.244.3.0-24&10.0.0.0-8"} {
		if _, _, err := ParseLeaseKey(bad); err == nil {
			t.Errorf("ParseLeaseKey(%q) accepted", bad)
		}
	}
}

// The stored value must be byte-identical to what upstream flanneld writes (compat.md).
func TestLeaseAttrsWireFormat(t *testing.T) {
	a := LeaseAttrs{PublicIP: netip.MustParseAddr("192.168.64.3"), BackendType: "vxlan",
		BackendData: json.RawMessage(`{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}`)}
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	var back LeaseAttrs
	if err := json.Unmarshal(b, &back); err != nil || back.PublicIP != a.PublicIP || back.PublicIPv6.IsValid() {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	dual := LeaseAttrs{PublicIP: a.PublicIP, PublicIPv6: netip.MustParseAddr("fd00::3"), BackendType: "host-gw"}
	b, _ = json.Marshal(dual)
	if string(b) != `{"PublicIP":"192.168.64.3","PublicIPv6":"fd00::3","BackendType":"host-gw"}` {
		t.Fatalf("dual: %s", b)
	}
	if err := json.Unmarshal([]byte(`{"PublicIP":"fd00::1"}`), &back); err == nil {
		t.Error("an IPv6 PublicIP was accepted")
	}
}
