package plan

import (
	"errors"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The seed examples.
func TestSeedExamples(t *testing.T) {
	vpc := Input{VPCCIDR: netip.MustParsePrefix("192.168.0.0/16"), VSwitchCIDRs: prefixes("192.168.0.0/24"),
		PodVSwitchCIDRs: prefixes("192.168.32.0/19"), Backends: []string{ENI, ENIExclusive}}

	in := vpc
	in.InstanceTypes = []instanceType{itype(t, "ecs.c7.4xlarge")}
	p := mustMake(t, in)
	if r := result(t, p, ENI); r.PodsPerNode != 210 || r.PodLimit != LimitAddressesPerENI {
		t.Errorf("ecs.c7.4xlarge shared ENI: %d pods (%s), want 210 (addresses-per-eni)", r.PodsPerNode, r.PodLimit)
	}
	if it := p.Input.InstanceTypes[0]; it.SharedENIPods != 210 || it.ExclusiveENIPods != 7 || it.TrunkENIPods != 23 || it.ExclusiveTrunkENIPods != 6+23 {
		t.Errorf("ecs.c7.4xlarge figures %+v, want 210 shared, 7 exclusive, 23 trunk members (31 - 8), 29 exclusive with trunking (8 - 2 + 23)", it)
	}
	if r := result(t, p, ENIExclusive); r.PodsPerNode != 7 || r.PodLimit != LimitENICount {
		t.Errorf("ecs.c7.4xlarge exclusive ENI: %d pods (%s), want 7 (eni-count)", r.PodsPerNode, r.PodLimit)
	}

	in = vpc
	in.InstanceTypes = []instanceType{itype(t, "ecs.c6.4xlarge")}
	if r := result(t, mustMake(t, in), ENI); r.PodsPerNode != 140 {
		t.Errorf("ecs.c6.4xlarge shared ENI: %d pods, want 140", r.PodsPerNode)
	}

	p = mustMake(t, Input{PodCIDRs: prefixes("172.16.0.0/20"), SubnetLen: 24, Backends: []string{VXLAN}})
	if r := result(t, p, VXLAN); r.NodesPerCluster != 16 || r.NodeLimit != LimitSubnets || r.PodsPerNode != 253 {
		t.Errorf("172.16.0.0/20 in /24s: %d nodes (%s), %d pods per node; want 16 (subnets), 253", r.NodesPerCluster, r.NodeLimit, r.PodsPerNode)
	}

	for _, q := range []struct{ quota, nodes int64 }{{0, 200}, {200, 200}, {1000, 1000}} {
		p = mustMake(t, Input{PodCIDRs: prefixes("10.0.0.0/8"), VPCCIDR: netip.MustParsePrefix("192.168.0.0/16"),
			Quota: int(q.quota), Backends: []string{AliVPC}})
		if r := result(t, p, AliVPC); r.NodesPerCluster != q.nodes || r.NodeLimit != LimitRouteTableQuota {
			t.Errorf("quota %d: %d nodes (%s), want %d (route-table-quota)", q.quota, r.NodesPerCluster, r.NodeLimit, q.nodes)
		}
	}
	_, err := Make(Input{PodCIDRs: prefixes("10.0.0.0/8"), Quota: 1001})
	var ie *InputError
	if !errors.As(err, &ie) || ie.Field != "--route-table-quota" || !strings.Contains(ie.Msg, "1000") {
		t.Errorf("quota 1001: %v, want an input error naming --route-table-quota and 1000", err)
	}
}

func TestPlanFailures(t *testing.T) {
	vpc := netip.MustParsePrefix("192.168.0.0/16")
	cases := []struct {
		name    string
		in      Input
		backend string
		want    string
		status  string
	}{
		{"pod CIDR too small", Input{PodCIDRs: prefixes("172.16.0.0/20"), Nodes: 17, Backends: []string{VXLAN}}, VXLAN, "PodCIDRTooSmall", "fail"},
		{"etcd skips the first subnet", Input{PodCIDRs: prefixes("172.16.0.0/20"), Nodes: 16, SubnetManager: SubnetManagerEtcd, Backends: []string{VXLAN}}, VXLAN, "PodCIDRTooSmall", "fail"},
		{"pods overlap services", Input{PodCIDRs: prefixes("10.0.0.0/8"), ServiceCIDRs: prefixes("10.96.0.0/12"), Backends: []string{VXLAN}}, VXLAN, "PodCIDROverlapsServiceCIDR", "fail"},
		{"pods overlap the VPC", Input{PodCIDRs: prefixes("192.168.128.0/17"), VPCCIDR: vpc, Backends: []string{AliVPC}}, AliVPC, "PodCIDROverlapsVPC", "fail"},
		{"services overlap the VPC", Input{PodCIDRs: prefixes("10.244.0.0/16"), ServiceCIDRs: prefixes("192.168.250.0/24"), VPCCIDR: vpc, Backends: []string{VXLAN}}, VXLAN, "ServiceCIDROverlapsVPC", "fail"},
		{"route into 100.64/10", Input{PodCIDRs: prefixes("100.64.0.0/16"), VPCCIDR: vpc, Backends: []string{AliVPC}}, AliVPC, "PodCIDRReserved", "fail"},
		{"more nodes than the quota", Input{PodCIDRs: prefixes("10.0.0.0/8"), VPCCIDR: vpc, Nodes: 201, Backends: []string{AliVPC}}, AliVPC, "NodesOverQuota", "fail"},
		{"foreign entries eat the quota", Input{PodCIDRs: prefixes("10.0.0.0/8"), VPCCIDR: vpc, Nodes: 190, EntriesUsed: 20, Backends: []string{AliVPC}}, AliVPC, "NodesOverQuota", "fail"},
		{"dual stack takes two entries per node", Input{PodCIDRs: prefixes("10.0.0.0/8", "fd00::/48"), VPCCIDR: vpc, Nodes: 101, Backends: []string{AliVPC}}, AliVPC, "NodesOverQuota", "fail"},
		{"host-gw in a VPC", Input{PodCIDRs: prefixes("10.244.0.0/16"), VPCCIDR: vpc, Backends: []string{HostGW, VXLAN}}, HostGW, "HostGWNeedsL2", "partial"},
		{"vSwitch addresses", Input{VPCCIDR: vpc, VSwitchCIDRs: prefixes("192.168.0.0/24"), Nodes: 2, Backends: []string{ENI},
			InstanceTypes: []instanceType{{ID: "x", ENIs: 8, IPv4PerENI: 30}}}, ENI, "VSwitchAddressesExhausted", "fail"},
		{"eni without a type", Input{VPCCIDR: vpc, Backends: []string{ENI}}, ENI, "InstanceTypeRequired", "fail"},
		{"overlay without a pod CIDR", Input{Backends: []string{VXLAN}}, VXLAN, "PodCIDRRequired", "fail"},
		{"node mask too long for node IPAM", Input{PodCIDRs: prefixes("10.0.0.0/8"), SubnetLen: 25, Backends: []string{VXLAN}}, VXLAN, "InvalidNodeSubnet", "fail"},
		{"node mask shorter than the pod CIDR", Input{PodCIDRs: prefixes("10.0.0.0/16"), SubnetLen: 15, Backends: []string{VXLAN}}, VXLAN, "InvalidNodeSubnet", "fail"},
		{"a /31 node subnet holds no pod", Input{PodCIDRs: prefixes("10.0.0.0/16"), SubnetLen: 31, Backends: []string{VXLAN}}, VXLAN, "InvalidNodeSubnet", "fail"},
		{"etcd refuses /31 as upstream", Input{PodCIDRs: prefixes("10.0.0.0/16"), SubnetLen: 31, SubnetManager: SubnetManagerEtcd, Backends: []string{VXLAN}}, VXLAN, "InvalidNodeSubnet", "fail"},
		{"IPv6 node mask too long", Input{PodCIDRs: prefixes("fd00::/40"), Backends: []string{VXLAN}}, VXLAN, "InvalidNodeSubnet", "fail"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustMake(t, c.in)
			r := result(t, p, c.backend)
			if r.Fits || !slices.Contains(codes(r.Errors), c.want) {
				t.Fatalf("%s: fits=%v errors %v, want %s", c.backend, r.Fits, r.Errors, c.want)
			}
			if p.Status != c.status {
				t.Fatalf("status %s, want %s (recommendation %+v)", p.Status, c.status, p.Recommendation)
			}
			for _, f := range r.Errors {
				if f.Message == "" {
					t.Errorf("%s has no message", f.Code)
				}
			}
		})
	}
}

// FuzzMake: any input either is refused as an InputError or gives a plan whose counts are in range and whose
// messages carry no negative number (an overflow) and no /0 pod CIDR.
func FuzzMake(f *testing.F) {
	f.Add("10.244.0.0/16", 24, "192.168.0.0/16", 200, 100, 0, 0, false)
	f.Add("fd00::/56", 64, "", 1000, 0, 0, 0, true)
	f.Add("10.0.0.0/8", 24, "192.168.0.0/16", 200, 4611686018427387905, 0, 0, false)
	f.Add("10.0.0.0/8", 24, "192.168.0.0/16", 200, 1<<53-1, 10, 110, true)
	f.Add("10.0.0.0/8", 33, "", 0, 0, 0, 0, false)
	f.Add("10.0.0.0/8", -1, "", 0, 0, 0, 0, false)
	negative := regexp.MustCompile(`(^|[^\w.])-\d`)
	f.Fuzz(func(t *testing.T, pod string, slen int, vpc string, quota, nodes, used, maxPods int, etcd bool) {
		in := Input{SubnetLen: slen, Quota: quota, Nodes: nodes, EntriesUsed: used, MaxPods: maxPods}
		if etcd {
			in.SubnetManager = SubnetManagerEtcd
		}
		p, err := netip.ParsePrefix(pod)
		if err != nil {
			return
		}
		in.PodCIDRs = []netip.Prefix{p}
		if p.Addr().Is6() {
			in.SubnetLen, in.IPv6SubnetLen = 0, slen
		}
		if v, err := netip.ParsePrefix(vpc); err == nil {
			in.VPCCIDR = v
		}
		pl, err := Make(in)
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("error %v is not an InputError", err)
			}
			return
		}
		for _, r := range pl.Backends {
			if r.PodsPerNode < 0 || r.NodesPerCluster < 0 || r.PodsPerCluster < 0 || r.PodsPerCluster > MaxCount || r.Fits != (len(r.Errors) == 0) {
				t.Fatalf("%+v", r)
			}
			for _, f := range append(r.Errors, r.Warnings...) {
				if negative.MatchString(f.Message) || strings.Contains(f.Message, "/0 pod CIDR") {
					t.Fatalf("%s: %s: %s", r.Backend, f.Code, f.Message)
				}
			}
		}
	})
}
