package plugin

import (
	"strings"
	"testing"
	"time"
)

// Whatever the runtime hands over, the net conf and CNI_ARGS parsers never panic, and what LoadConf accepts is
// within bounds.
func FuzzLoadConf(f *testing.F) {
	f.Add([]byte(`{"cniVersion":"1.0.0","name":"weft","type":"weft-eni","socket":"/run/weft/eni.sock","timeout":"120s"}`), "K8S_POD_NAMESPACE=a;K8S_POD_NAME=b")
	f.Add([]byte(`{"cniVersion":"1.1.0","name":"weft","prevResult":{"cniVersion":"1.1.0","ips":[{"address":"10.0.0.1/32"}]},"cni.dev/valid-attachments":[{"containerID":"a","ifname":"eth0"}]}`), "IgnoreUnknown=1;;=")
	f.Add([]byte(`{"name":"x","cniVersion":"1.0.0","timeout":"1h"}`), "K8S_POD_NAME")
	f.Add([]byte(`{"name":"x","cniVersion":"1.0.0","runtimeConfig":{"bandwidth":{"ingressRate":40000000,"ingressBurst":4294967295}}}`), "")
	f.Fuzz(func(t *testing.T, conf []byte, args string) {
		if c, err := LoadConf(conf); err == nil {
			if c.timeout < time.Second || c.timeout > 10*time.Minute || !strings.HasPrefix(c.Socket, "/") || !strings.HasPrefix(c.DataDir, "/") || c.Name == "" {
				t.Fatalf("accepted %s as %+v", conf, c)
			}
			if err := c.bandwidth.Validate(); err != nil {
				t.Fatalf("accepted %s with limits %+v: %v", conf, c.bandwidth, err)
			}
			_, _, _ = prevIP(c, "eth0")
		}
		if a, err := ParseArgs(args); err == nil && (strings.Contains(a.Name, ";") || strings.Contains(a.Namespace, ";")) {
			t.Fatalf("%q parsed as %+v", args, a)
		}
	})
}
