package plan

import (
	"testing"
)

func TestEdgeLengthsAndIPv6(t *testing.T) {
	cases := []struct {
		name          string
		in            Input
		pods, nodes   int64
		podLim, nodeL string
	}{
		{"one /16 node", Input{PodCIDRs: prefixes("10.1.0.0/16"), SubnetLen: 16}, 65533, 1, LimitSubnetAddresses, LimitSubnets},
		{"/30 nodes hold one pod", Input{PodCIDRs: prefixes("10.1.0.0/16"), SubnetLen: 30}, 1, 16384, LimitSubnetAddresses, LimitSubnets},
		{"16 bits of nodes", Input{PodCIDRs: prefixes("10.0.0.0/8"), SubnetLen: 24}, 253, 65536, LimitSubnetAddresses, LimitSubnets},
		{"etcd default SubnetLen for a /24 network", Input{PodCIDRs: prefixes("10.1.1.0/24"), SubnetManager: SubnetManagerEtcd}, 61, 3, LimitSubnetAddresses, LimitSubnets},
		{"max-pods binds", Input{PodCIDRs: prefixes("10.244.0.0/16"), MaxPods: 110}, 110, 256, LimitMaxPods, LimitSubnets},
		{"IPv6 /56 in /64s", Input{PodCIDRs: prefixes("fd00:10:244::/56")}, MaxCount, 256, LimitSubnetAddresses, LimitSubnets},
		{"IPv6 /48 in /64s", Input{PodCIDRs: prefixes("fd00::/48"), MaxPods: 250}, 250, 65536, LimitMaxPods, LimitSubnets},
		{"dual stack: the smaller family binds", Input{PodCIDRs: prefixes("10.244.0.0/20", "fd00::/56")}, 253, 16, LimitSubnetAddresses, LimitSubnets},
		{"etcd IPv6", Input{PodCIDRs: prefixes("fd00::/60"), SubnetManager: SubnetManagerEtcd}, MaxCount, 15, LimitSubnetAddresses, LimitSubnets},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.in.Backends = []string{VXLAN}
			r := result(t, mustMake(t, c.in), VXLAN)
			if !r.Fits || r.PodsPerNode != c.pods || r.NodesPerCluster != c.nodes || r.PodLimit != c.podLim || r.NodeLimit != c.nodeL {
				t.Fatalf("got fits=%v %d pods (%s) %d nodes (%s), errors %v; want %d (%s) %d (%s)", r.Fits, r.PodsPerNode, r.PodLimit,
					r.NodesPerCluster, r.NodeLimit, r.Errors, c.pods, c.podLim, c.nodes, c.nodeL)
			}
			if r.PodsPerCluster != mul(r.PodsPerNode, r.NodesPerCluster) || r.PodsPerCluster > MaxCount {
				t.Fatalf("pods per cluster %d", r.PodsPerCluster)
			}
		})
	}
}
