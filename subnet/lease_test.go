package subnet

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
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
	for _, bad := range []string{"", "10.244.3.0", "10.244.3.0-24&", "config", "10.244.3.0-24&10.0.0.0-8",
		"10.244.3.0-33", "fd00::-64", "x10.244.3.0-24", "10.244.3.0-24&fd00::-129", "0.0.0.0-0",
		"10.244.3.5-24", "10.244.3.0-24&FD00::-64", "10.244.3.0-24&fd00:0::-64"} {
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

// Golden values as upstream flanneld v0.28 stores them under <prefix>/subnets/ (testdata/lease-*.json).
func TestLeaseAttrsGolden(t *testing.T) {
	pub := netip.MustParseAddr("192.168.64.3")
	pub6 := netip.MustParseAddr("2001:db8::3")
	for file, a := range map[string]LeaseAttrs{
		"lease-v4.json": {PublicIP: pub, BackendType: "vxlan", BackendData: json.RawMessage(`{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}`)},
		"lease-dual.json": {PublicIP: pub, PublicIPv6: pub6, BackendType: "vxlan",
			BackendData:   json.RawMessage(`{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}`),
			BackendV6Data: json.RawMessage(`{"VNI": 1, "VtepMAC": "c6:d2:32:6f:8f:45"}`)}, // compacted on output
		"lease-v6.json": {PublicIPv6: pub6, BackendType: "host-gw"},
	} {
		want, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		got, err := json.Marshal(a)
		if err != nil || string(got) != string(want) {
			t.Errorf("%s: got %s (%v)\nwant %s", file, got, err, want)
		}
		var back LeaseAttrs
		if err := json.Unmarshal(want, &back); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		again, _ := json.Marshal(back)
		if back.PublicIP != a.PublicIP || back.PublicIPv6 != a.PublicIPv6 || back.BackendType != a.BackendType || string(again) != string(want) {
			t.Errorf("%s: read back %+v, re-written %s", file, back, again)
		}
	}
	// Values written by older upstreams omit PublicIPv6 altogether.
	var old LeaseAttrs
	if err := json.Unmarshal([]byte(`{"PublicIP":"10.0.0.1","BackendType":"udp"}`), &old); err != nil || old.PublicIPv6.IsValid() || old.PublicIP.String() != "10.0.0.1" {
		t.Errorf("old value: %+v %v", old, err)
	}
	for _, bad := range []string{`{"PublicIP":"x"}`, `{"PublicIP":"10.0.0.1","PublicIPv6":"10.0.0.2"}`, `[]`} {
		if err := json.Unmarshal([]byte(bad), &old); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
