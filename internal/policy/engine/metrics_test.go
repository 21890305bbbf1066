package engine

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"sigs.k8s.io/knftables"
)

func TestDeniedCounters(t *testing.T) {
	k := newKernel()
	e := start(t, k, Config{})
	e.SetPolicy("x", "deny", denyAll(t, "x"), nil)
	e.SetPod(pod("x", "a", "10.244.0.2", nil), "n1")
	if err := e.Ensure(ctxT(t), "x", "a", []netip.Addr{netip.MustParseAddr("10.244.0.2")}); err != nil {
		t.Fatal(err)
	}
	if len(k.Table.Counters) != 1 {
		t.Fatalf("counters %v", k.Table.Counters)
	}
	for _, c := range k.Table.Counters {
		c.Packets = knftables.PtrTo(uint64(42))
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(e)
	want := `
# HELP weft_network_policy_denied_packets_total Packets a NetworkPolicy's isolation dropped on this node, by the policy's namespace and name and the direction (a packet an isolated pod's policies all refuse counts for each of them).
# TYPE weft_network_policy_denied_packets_total counter
weft_network_policy_denied_packets_total{direction="ingress",namespace="x",policy="deny"} 42
# HELP weft_network_policy_synced 1 when the kernel holds the latest state of the pods, namespaces and policies, else 0.
# TYPE weft_network_policy_synced gauge
weft_network_policy_synced 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "weft_network_policy_denied_packets_total", "weft_network_policy_synced"); err != nil {
		t.Error(err)
	}
}
