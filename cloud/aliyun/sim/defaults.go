package sim

import (
	"fmt"
	"time"

	"github.com/weftnet/weft/cloud/instancetype"
)

// DefaultAccessKeyID and DefaultAccessKeySecret are the key pair of the default world.
const (
	DefaultAccessKeyID     = "LTAIalisimDefaultKey"
	DefaultAccessKeySecret = "alisim-default-secret-change-me"
)

// BuiltinInstanceTypes are the client's built-in instance types (instancetype.Builtin), so that a plan
// made from DescribeInstanceTypes against alisim and one made from the table agree.
func BuiltinInstanceTypes() []*InstanceType {
	var out []*InstanceType
	for _, t := range instancetype.Builtin() {
		out = append(out, &InstanceType{ID: t.ID, EniQuantity: t.ENIs, EniPrivateIpAddressQuantity: t.IPv4PerENI,
			EniIpv6AddressQuantity: t.IPv6PerENI, EniTotalQuantity: t.ENIsWithTrunk, EniTrunkSupported: t.TrunkSupported})
	}
	return out
}

// DefaultState is the world alisim serves with no topology file: region cn-hangzhou, one VPC 192.168.0.0/16
// with its system route table at the default quota of 200, two vSwitches in two zones, two security groups
// (sg-alisim0001, sg-alisim0002), and three running instances (one of each of the first three documented
// types), plus one access key pair.
func DefaultState() *State {
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st := &State{RegionID: "cn-hangzhou", Timing: DefaultTiming, InstanceTypes: BuiltinInstanceTypes(),
		AccessKeys: []AccessKey{{ID: DefaultAccessKeyID, Secret: DefaultAccessKeySecret}}}
	st.VPCs = []*VPC{{ID: "vpc-alisim0001", Name: "alisim", CIDR: "192.168.0.0/16", VRouterID: "vrt-alisim0001", Created: created}}
	st.RouteTables = []*RouteTable{{ID: "vtb-alisim0001", VPCID: "vpc-alisim0001", Type: "System", Quota: 200, Created: created,
		Entries: []*RouteEntry{
			{ID: "rte-sys-vsw1", Dst: "192.168.0.0/24", NextHopType: "local", Type: "System", Modified: created},
			{ID: "rte-sys-vsw2", Dst: "192.168.1.0/24", NextHopType: "local", Type: "System", Modified: created},
			{ID: "rte-sys-cloud", Dst: "100.64.0.0/10", NextHopType: "service", Type: "System", Modified: created},
		}}}
	st.VSwitches = []*VSwitch{
		{ID: "vsw-alisim0001", VPCID: "vpc-alisim0001", Zone: "cn-hangzhou-h", CIDR: "192.168.0.0/24", RouteTableID: "vtb-alisim0001"},
		{ID: "vsw-alisim0002", VPCID: "vpc-alisim0001", Zone: "cn-hangzhou-i", CIDR: "192.168.1.0/24", RouteTableID: "vtb-alisim0001"},
	}
	st.SecurityGroups = []*SecurityGroup{{ID: "sg-alisim0001", VPCID: "vpc-alisim0001"}, {ID: "sg-alisim0002", VPCID: "vpc-alisim0001"}}
	types := []string{"ecs.c7.4xlarge", "ecs.c6.4xlarge", "ecs.g7.2xlarge"}
	for i := 0; i < 3; i++ {
		sw := st.VSwitches[i%2]
		st.Instances = append(st.Instances, &Instance{ID: fmt.Sprintf("i-alisim%04d", i+1), Type: types[i], Zone: sw.Zone,
			VSwitchID: sw.ID, PrimaryIP: fmt.Sprintf("192.168.%d.%d", i%2, 10+i), MAC: fmt.Sprintf("00:16:3e:00:00:%02x", i+1),
			Status: "Running", Hostname: fmt.Sprintf("node%d", i+1), RAMRole: "weft-node"})
	}
	return st
}

func parseDuration(s string) (int64, error) {
	d, err := time.ParseDuration(s)
	return int64(d), err
}

// D is the decoded duration.
func (d duration) D() time.Duration { return time.Duration(d.d) }
