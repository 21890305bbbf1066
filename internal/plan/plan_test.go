package plan

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/weftnet/weft/cloud/aliyun"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func itype(t *testing.T, id string) aliyun.InstanceType {
	t.Helper()
	for _, it := range aliyun.BuiltinInstanceTypes() {
		if it.ID == id {
			return it
		}
	}
	t.Fatalf("no built-in %s", id)
	return aliyun.InstanceType{}
}

func mustMake(t *testing.T, in Input) *Plan {
	t.Helper()
	p, err := Make(in)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func result(t *testing.T, p *Plan, backend string) Result {
	t.Helper()
	for _, r := range p.Backends {
		if r.Backend == backend {
			return r
		}
	}
	t.Fatalf("no %s in %+v", backend, p.Backends)
	return Result{}
}

func codes(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Code)
	}
	return out
}

// The seed examples.
func TestSeedExamples(t *testing.T) {
	vpc := Input{VPCCIDR: netip.MustParsePrefix("192.168.0.0/16"), VSwitchCIDRs: prefixes("192.168.0.0/24"),
		PodVSwitchCIDRs: prefixes("192.168.32.0/19"), Backends: []string{ENI, ENIExclusive}}

	in := vpc
	in.InstanceTypes = []aliyun.InstanceType{itype(t, "ecs.c7.4xlarge")}
	p := mustMake(t, in)
	if r := result(t, p, ENI); r.PodsPerNode != 210 || r.PodLimit != LimitAddressesPerENI {
		t.Errorf("ecs.c7.4xlarge shared ENI: %d pods (%s), want 210 (addresses-per-eni)", r.PodsPerNode, r.PodLimit)
	}
	if it := p.Input.InstanceTypes[0]; it.SharedENIPods != 210 || it.ExclusiveENIPods != 7 || it.TrunkENIPods != 23 {
		t.Errorf("ecs.c7.4xlarge figures %+v, want 210 shared, 7 exclusive, 23 trunk members (31 - 8)", it)
	}
	if r := result(t, p, ENIExclusive); r.PodsPerNode != 7 || r.PodLimit != LimitENICount {
		t.Errorf("ecs.c7.4xlarge exclusive ENI: %d pods (%s), want 7 (eni-count)", r.PodsPerNode, r.PodLimit)
	}

	in = vpc
	in.InstanceTypes = []aliyun.InstanceType{itype(t, "ecs.c6.4xlarge")}
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
			InstanceTypes: []aliyun.InstanceType{{ID: "x", ENIs: 8, IPv4PerENI: 30}}}, ENI, "VSwitchAddressesExhausted", "fail"},
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

func TestInputErrorsNameTheFlag(t *testing.T) {
	vpc := netip.MustParsePrefix("192.168.0.0/16")
	cases := []struct {
		in    Input
		field string
	}{
		{Input{Backends: []string{"udp"}}, "--backend"},
		{Input{SubnetManager: "consul"}, "--subnet-manager"},
		{Input{Quota: -1}, "--route-table-quota"},
		{Input{Quota: 10, EntriesUsed: 11}, "--route-entries-used"},
		{Input{Nodes: -3}, "--nodes"},
		{Input{PodCIDRs: prefixes("10.0.0.0/16", "10.1.0.0/16")}, "--pod-cidr"},
		{Input{SubnetLen: 24}, "--node-subnet-len"},
		{Input{VSwitchCIDRs: prefixes("192.168.0.0/24")}, "--vswitch-cidr"},
		{Input{VPCCIDR: vpc, VSwitchCIDRs: prefixes("172.16.0.0/24")}, "--vswitch-cidr"},
		{Input{VPCCIDR: vpc, VSwitchCIDRs: prefixes("192.168.0.0/24"), PodVSwitchCIDRs: prefixes("192.168.0.0/25")}, "--pod-vswitch-cidr"},
		{Input{VPCCIDR: vpc, VSwitchCIDRs: prefixes("192.168.0.0/30")}, "--vswitch-cidr"},
		{Input{VPCCIDR: netip.MustParsePrefix("fd00::/48")}, "--vpc-cidr"},
		{Input{InstanceTypes: []aliyun.InstanceType{{ID: "a"}, {ID: "a"}}}, "--instance-type"},
	}
	for _, c := range cases {
		_, err := Make(c.in)
		var ie *InputError
		if !errors.As(err, &ie) || ie.Field != c.field {
			t.Errorf("%+v: %v, want an input error on %s", c.in, err, c.field)
		}
	}
}

func TestRecommendation(t *testing.T) {
	vpc := netip.MustParsePrefix("192.168.0.0/16")
	c7 := []aliyun.InstanceType{itype(t, "ecs.c7.4xlarge")}
	sws := prefixes("192.168.0.0/20")
	cases := []struct {
		name string
		in   Input
		want string
	}{
		{"on premises", Input{PodCIDRs: prefixes("10.244.0.0/16")}, VXLAN},
		{"one L2 segment", Input{PodCIDRs: prefixes("10.244.0.0/16"), L2Adjacent: true}, HostGW},
		{"VPC within the quota", Input{PodCIDRs: prefixes("10.244.0.0/16"), VPCCIDR: vpc, Nodes: 150}, AliVPC},
		{"VPC over the quota, ENI sized", Input{PodCIDRs: prefixes("10.0.0.0/12"), VPCCIDR: vpc, VSwitchCIDRs: sws,
			PodVSwitchCIDRs: prefixes("192.168.128.0/17"), InstanceTypes: c7, Nodes: 150, Quota: 100}, ENI},
		{"VPC over the quota, no instance type", Input{PodCIDRs: prefixes("10.0.0.0/12"), VPCCIDR: vpc, Nodes: 300}, VXLAN},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustMake(t, c.in)
			if p.Recommendation == nil || p.Recommendation.Backend != c.want {
				t.Fatalf("recommended %+v, want %s; backends %+v", p.Recommendation, c.want, p.Backends)
			}
			if len(p.Recommendation.Reasons) < 2 {
				t.Fatalf("reasons %v", p.Recommendation.Reasons)
			}
			if p.Status != "ok" || p.ExitCode() != 0 {
				t.Fatalf("status %s exit %d with no backend named", p.Status, p.ExitCode())
			}
		})
	}
	// When a named backend fails and another fits, the reasons say why the better one was passed over.
	p := mustMake(t, Input{PodCIDRs: prefixes("10.0.0.0/12"), VPCCIDR: vpc, Nodes: 300, Backends: []string{AliVPC, VXLAN}})
	if p.Recommendation.Backend != VXLAN || p.ExitCode() != 1 || !strings.Contains(strings.Join(p.Recommendation.Reasons, "\n"), "not ali-vpc") {
		t.Fatalf("got %+v exit %d", p.Recommendation, p.ExitCode())
	}
	p = mustMake(t, Input{PodCIDRs: prefixes("10.0.0.0/12"), VPCCIDR: vpc, Nodes: 300, Backends: []string{AliVPC}})
	if p.Recommendation != nil || p.ExitCode() != 2 {
		t.Fatalf("got %+v exit %d, want no recommendation and exit 2", p.Recommendation, p.ExitCode())
	}
}

// The JSON layout is an interface for scripts: the golden files pin every field name and value.
func TestJSONGolden(t *testing.T) {
	vpc := netip.MustParsePrefix("192.168.0.0/16")
	cases := map[string]Input{
		"vpc": {PodCIDRs: prefixes("172.16.0.0/16"), ServiceCIDRs: prefixes("10.96.0.0/12"), VPCCIDR: vpc,
			VSwitchCIDRs: prefixes("192.168.0.0/24", "192.168.1.0/24"), PodVSwitchCIDRs: prefixes("192.168.64.0/18"),
			InstanceTypes: []aliyun.InstanceType{itype(t, "ecs.c7.4xlarge"), itype(t, "ecs.c6.4xlarge")},
			TypeSource:    aliyun.BuiltinInstanceTypesSource, Nodes: 180},
		"overlay-failing": {PodCIDRs: prefixes("172.16.0.0/20", "fd00:10:244::/56"), ServiceCIDRs: prefixes("10.96.0.0/12"),
			Nodes: 20, MaxPods: 110, Backends: []string{VXLAN, HostGW}},
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetIndent("", "  ")
			if err := enc.Encode(mustMake(t, in)); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", name+".golden.json")
			if *update {
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Fatalf("JSON differs from %s (run with -update after an intended change):\n%s", golden, buf.String())
			}
		})
	}
}

func TestTextOutput(t *testing.T) {
	p := mustMake(t, Input{PodCIDRs: prefixes("172.16.0.0/20"), Nodes: 20, Backends: []string{VXLAN, HostGW}})
	var buf bytes.Buffer
	if err := p.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"BACKEND", "vxlan", "16", "PodCIDRTooSmall", "use a /19 pod CIDR", "No backend fits"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, buf.String())
		}
	}
}

func FuzzMake(f *testing.F) {
	f.Add("10.244.0.0/16", 24, "192.168.0.0/16", 200, 100)
	f.Add("fd00::/56", 64, "", 1000, 0)
	f.Fuzz(func(t *testing.T, pod string, slen int, vpc string, quota, nodes int) {
		in := Input{SubnetLen: slen, Quota: quota, Nodes: nodes}
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
		}
	})
}

// ENI pods draw on the vSwitches: 4 addresses of each are reserved, and when pods share the nodes' vSwitches each
// node's primary address comes out of the same pool.
func TestVSwitchPool(t *testing.T) {
	vpc := netip.MustParsePrefix("192.168.0.0/16")
	c7 := []aliyun.InstanceType{itype(t, "ecs.c7.4xlarge")} // 7 pods per node with exclusive ENIs
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
