package cni

import (
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/weftnet/weft/subnet"
)

func env(dual, masq bool) subnet.Env {
	e := subnet.Env{EnableIPv4: true, Network: netip.MustParsePrefix("10.1.0.0/16"),
		Subnet: netip.MustParsePrefix("10.1.17.1/24"), MTU: 1450, IPMasq: masq}
	if dual {
		e.EnableIPv6, e.IPv6Network, e.IPv6Subnet = true, netip.MustParsePrefix("fd00:1::/56"), netip.MustParsePrefix("fd00:1:0:17::1/64")
	}
	return e
}

func render(t *testing.T, conf string, e subnet.Env) string {
	t.Helper()
	n, err := loadConf([]byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(Delegate(n, e))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The delegate must be upstream's (compat.md): ipMasq is the opposite of FLANNEL_IPMASQ, mtu and isGateway set,
// host-local with the node subnet's network and a route to the cluster network.
func TestDelegateGolden(t *testing.T) {
	cases := []struct {
		name, conf string
		env        subnet.Env
		want       string
	}{
		{"upstream example", `{"name":"cbr0","cniVersion":"0.3.1","type":"flannel"}`, env(false, true),
			`{"cniVersion":"0.3.1","ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.1.17.0/24"}]],"routes":[{"dst":"10.1.0.0/16"}],"type":"host-local"},"isGateway":true,"mtu":1450,"name":"cbr0","type":"bridge"}`},
		{"no masq by weftd", `{"name":"cbr0","type":"flannel"}`, env(false, false),
			`{"ipMasq":true,"ipam":{"ranges":[[{"subnet":"10.1.17.0/24"}]],"routes":[{"dst":"10.1.0.0/16"}],"type":"host-local"},"isGateway":true,"mtu":1450,"name":"cbr0","type":"bridge"}`},
		{"dual stack", `{"name":"cbr0","cniVersion":"0.3.1","type":"flannel"}`, env(true, true),
			`{"cniVersion":"0.3.1","ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.1.17.0/24"}],[{"subnet":"fd00:1:0:17::/64"}]],"routes":[{"dst":"10.1.0.0/16"},{"dst":"fd00:1::/56"}],"type":"host-local"},"isGateway":true,"mtu":1450,"name":"cbr0","type":"bridge"}`},
		{"kube-flannel delegate and user keys win", `{"name":"cbr0","type":"flannel","delegate":{"hairpinMode":true,"isDefaultGateway":true,"mtu":1400,"bridge":"cni0"},"ipam":{"dataDir":"/x"}}`, env(false, true),
			`{"bridge":"cni0","hairpinMode":true,"ipMasq":false,"ipam":{"dataDir":"/x","ranges":[[{"subnet":"10.1.17.0/24"}]],"routes":[{"dst":"10.1.0.0/16"}],"type":"host-local"},"isDefaultGateway":true,"isGateway":true,"mtu":1400,"name":"cbr0","type":"bridge"}`},
		{"other delegate type gets no isGateway", `{"name":"n","type":"flannel","delegate":{"type":"ptp"}}`, env(false, true),
			`{"ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.1.17.0/24"}]],"routes":[{"dst":"10.1.0.0/16"}],"type":"host-local"},"mtu":1450,"name":"n","type":"ptp"}`},
	}
	for _, c := range cases {
		if got := render(t, c.conf, c.env); got != c.want {
			t.Errorf("%s:\ngot  %s\nwant %s", c.name, got, c.want)
		}
	}
}

func TestDefaults(t *testing.T) {
	n, err := loadConf([]byte(`{"name":"x","type":"flannel"}`))
	if err != nil || n.SubnetFile != DefaultSubnetFile || n.DataDir != DefaultDataDir {
		t.Fatalf("%+v %v", n, err)
	}
	if _, err := loadConf([]byte(`{"name":`)); err == nil {
		t.Fatal("malformed config accepted")
	}
}
