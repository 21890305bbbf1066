package subnet

import (
	"net/netip"
	"testing"
)

func TestLeaseNode(t *testing.T) {
	v4 := netip.MustParsePrefix("10.244.1.0/24")
	for _, c := range []struct {
		l    Lease
		want string
	}{
		{Lease{NodeName: "n1", Subnet: v4, Attrs: LeaseAttrs{PublicIP: netip.MustParseAddr("192.0.2.1")}}, "n1"},
		{Lease{Subnet: v4, Attrs: LeaseAttrs{PublicIP: netip.MustParseAddr("192.0.2.1")}}, "192.0.2.1"},
		{Lease{Attrs: LeaseAttrs{PublicIPv6: netip.MustParseAddr("2001:db8::1")}}, "2001:db8::1"},
		{Lease{Subnet: v4}, "10.244.1.0-24"},
	} {
		if got := c.l.Node(); got != c.want {
			t.Errorf("%+v: Node() = %q, want %q", c.l, got, c.want)
		}
	}
}

func TestSubnetlessBackendNeedsNoNetwork(t *testing.T) {
	DeclareSubnetless("test-subnetless")
	c, err := ParseConfig([]byte(`{"Backend":{"Type":"test-subnetless"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.PerNodeSubnets() {
		t.Fatal("a declared subnetless backend reports per-node subnets")
	}
	if err := c.ValidateEtcd(); err != nil {
		t.Fatalf("a subnetless backend without Network: %v", err)
	}
	// A Network that is given is still checked.
	c, _ = ParseConfig([]byte(`{"Network":"10.0.0.0/30","Backend":{"Type":"test-subnetless"}}`))
	if err := c.ValidateEtcd(); err == nil {
		t.Fatal("a bad Network passed because the backend is subnetless")
	}
	// Every other backend still needs one, with upstream's message.
	c, _ = ParseConfig([]byte(`{"Backend":{"Type":"vxlan"}}`))
	if err := c.ValidateEtcd(); err == nil || c.PerNodeSubnets() == false {
		t.Fatalf("vxlan without Network: err=%v", err)
	}
}
