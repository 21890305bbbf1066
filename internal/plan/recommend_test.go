package plan

import (
	"net/netip"
	"strings"
	"testing"
)

func TestRecommendation(t *testing.T) {
	vpc := netip.MustParsePrefix("192.168.0.0/16")
	c7 := []instanceType{itype(t, "ecs.c7.4xlarge")}
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
