package plan

import (
	"errors"
	"net/netip"
	"testing"
)

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
		{Input{InstanceTypes: []instanceType{{ID: "a"}, {ID: "a"}}}, "--instance-type"},
	}
	for _, c := range cases {
		_, err := Make(c.in)
		var ie *InputError
		if !errors.As(err, &ie) || ie.Field != c.field {
			t.Errorf("%+v: %v, want an input error on %s", c.in, err, c.field)
		}
	}
}
