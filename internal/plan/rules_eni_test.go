package plan

import (
	"net/netip"
	"testing"
)

// ENI pods draw on the vSwitches: 4 addresses of each are reserved, and when pods share the nodes' vSwitches each
// node's primary address comes out of the same pool.
func TestVSwitchPool(t *testing.T) {
	vpc := netip.MustParsePrefix("192.168.0.0/16")
	c7 := []instanceType{itype(t, "ecs.c7.4xlarge")} // 7 pods per node with exclusive ENIs
	shared := mustMake(t, Input{VPCCIDR: vpc, VSwitchCIDRs: prefixes("192.168.0.0/24"), InstanceTypes: c7, Backends: []string{ENIExclusive}})
	if r := result(t, shared, ENIExclusive); r.NodesPerCluster != 252/8 || r.NodeLimit != LimitVSwitchAddresses {
		t.Errorf("pods on the nodes' /24: %d nodes (%s), want %d: 252 addresses, 7 pods and the node's own per node",
			r.NodesPerCluster, r.NodeLimit, 252/8)
	}
	own := mustMake(t, Input{VPCCIDR: vpc, VSwitchCIDRs: prefixes("192.168.0.0/24"), PodVSwitchCIDRs: prefixes("192.168.1.0/24"),
		InstanceTypes: c7, Backends: []string{ENIExclusive}})
	if r := result(t, own, ENIExclusive); r.NodesPerCluster != 252/7 {
		t.Errorf("pods on their own /24: %d nodes, want %d", r.NodesPerCluster, 252/7)
	}
}
