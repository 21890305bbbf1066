package cni

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/weftnet/weft/subnet"
)

// FuzzSubnetEnvAndConf: whatever subnet.env and the plugin configuration hold, the plugin refuses them or builds
// a delegate configuration that marshals, names a plugin type it can look up, and hands host-local exactly the
// node subnets subnet.env gave. It never panics.
func FuzzSubnetEnvAndConf(f *testing.F) {
	env4 := "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
	env6 := env4 + "FLANNEL_IPV6_NETWORK=fd00:1::/56\nFLANNEL_IPV6_SUBNET=fd00:1:0:17::1/64\n"
	for _, c := range []struct{ env, conf string }{
		{env4, `{"name":"cbr0","cniVersion":"0.3.1","type":"flannel"}`},
		{env6, `{"name":"cbr0","type":"flannel","delegate":{"hairpinMode":true,"isDefaultGateway":true},"ipam":{"routes":[{"dst":"1.2.3.0/24"}]}}`},
		{env4, `{"name":"n","type":"flannel","delegate":{"type":5}}`},
		{env4, `{"name":"n","type":"flannel","delegate":{"type":"../../bin/sh"}}`},
		{env4, `{"name":"n","type":"flannel","delegate":{"type":""}}`},
		{env4, `{"name":"n","type":"flannel","ipam":{"routes":"x","type":7}}`},
		{"FLANNEL_SUBNET=10.1.17.1/24\n", `{"name":"n"}`},
		{env4, `{"name":`},
	} {
		f.Add([]byte(c.env), []byte(c.conf))
	}
	f.Fuzz(func(t *testing.T, envData, conf []byte) {
		env, err := subnet.ParseEnv(envData, "subnet.env")
		if err != nil {
			return
		}
		n, err := loadConf(conf)
		if err != nil {
			return
		}
		d := Delegate(n, env)
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("delegate does not marshal: %v", err)
		}
		typ, ok := d["type"].(string)
		if !ok || typ == "" || strings.ContainsAny(typ, `/\`) {
			t.Fatalf("delegate type %#v", d["type"])
		}
		if env.EnableIPv4 && !strings.Contains(string(b), `"subnet":"`+env.Subnet.Masked().String()+`"`) {
			t.Fatalf("IPv4 subnet %v missing from %s", env.Subnet, b)
		}
		if env.EnableIPv6 && !strings.Contains(string(b), `"subnet":"`+env.IPv6Subnet.Masked().String()+`"`) {
			t.Fatalf("IPv6 subnet %v missing from %s", env.IPv6Subnet, b)
		}
	})
}
