package plan

import (
	"errors"
	"net/netip"
	"regexp"
	"strings"
	"testing"
)

// A node count near 2^62 used to loop for ever (neededPrefix's shift overflowed) and, just below, to print a
// negative quota and a /0 pod CIDR: counts saturate, absurd node counts are bad input, and no message carries a
// negative number or a pod CIDR that cannot be had.
func TestHugeNodeCounts(t *testing.T) {
	vpc := netip.MustParsePrefix("192.168.0.0/16")
	negative := regexp.MustCompile(`(^|[^\w.])-\d`)
	for _, nodes := range []int{1 << 20, 1 << 30, MaxCount} {
		for _, mgr := range []string{SubnetManagerKube, SubnetManagerEtcd} {
			in := Input{PodCIDRs: prefixes("10.0.0.0/8", "fd00::/48"), IPv6SubnetLen: 64, VPCCIDR: vpc, Nodes: nodes, SubnetManager: mgr,
				VSwitchCIDRs: prefixes("192.168.0.0/24"), InstanceTypes: []instanceType{itype(t, "ecs.c7.4xlarge")}}
			p := mustMake(t, in)
			if p.Status != "fail" {
				t.Errorf("%d nodes (%s): status %s, want fail", nodes, mgr, p.Status)
			}
			for _, r := range p.Backends {
				for _, f := range append(r.Errors, r.Warnings...) {
					if negative.MatchString(f.Message) || strings.Contains(f.Message, "/0 pod CIDR") {
						t.Errorf("%d nodes (%s), %s: %s: %s", nodes, mgr, r.Backend, f.Code, f.Message)
					}
				}
			}
		}
	}
	for _, nodes := range []int{MaxCount + 1, 4611686018427387905, 1<<63 - 1} {
		_, err := Make(Input{PodCIDRs: prefixes("10.0.0.0/8"), Nodes: nodes})
		var ie *InputError
		if !errors.As(err, &ie) || ie.Field != "--nodes" {
			t.Errorf("--nodes %d: %v, want an input error naming --nodes", nodes, err)
		}
	}
}

// A node subnet length outside the family's address bits is bad input (exit 3) naming the flag and the range,
// not a plan that does not fit.
func TestSubnetLenRange(t *testing.T) {
	for _, c := range []struct {
		in    Input
		field string
	}{
		{Input{PodCIDRs: prefixes("10.0.0.0/8"), SubnetLen: 33}, "--node-subnet-len"},
		{Input{PodCIDRs: prefixes("10.0.0.0/8"), SubnetLen: -1}, "--node-subnet-len"},
		{Input{PodCIDRs: prefixes("fd00::/48"), IPv6SubnetLen: 129}, "--ipv6-node-subnet-len"},
		{Input{PodCIDRs: prefixes("fd00::/48"), IPv6SubnetLen: -1}, "--ipv6-node-subnet-len"},
	} {
		_, err := Make(c.in)
		var ie *InputError
		if !errors.As(err, &ie) || ie.Field != c.field || !strings.Contains(ie.Msg, "expected") {
			t.Errorf("%+v: %v, want an input error naming %s and the range", c.in, err, c.field)
		}
	}
}
