package sim

import (
	"fmt"
	"time"
)

// DefaultAccessKeyID and DefaultAccessKeySecret are the key pair of the default world.
const (
	DefaultAccessKeyID     = "LTAIalisimDefaultKey"
	DefaultAccessKeySecret = "alisim-default-secret-change-me"
)

// BuiltinInstanceTypes are instance types with their ENI figures (alibaba-api.md, plus a few common ones).
func BuiltinInstanceTypes() []*InstanceType {
	return []*InstanceType{
		{ID: "ecs.c7.4xlarge", EniQuantity: 8, EniPrivateIpAddressQuantity: 30, EniIpv6AddressQuantity: 30, EniTotalQuantity: 8 + 23, EniTrunkSupported: true},
		{ID: "ecs.c6.4xlarge", EniQuantity: 8, EniPrivateIpAddressQuantity: 20, EniIpv6AddressQuantity: 1, EniTotalQuantity: 8},
		{ID: "ecs.g7.2xlarge", EniQuantity: 4, EniPrivateIpAddressQuantity: 15, EniIpv6AddressQuantity: 15, EniTotalQuantity: 4 + 11, EniTrunkSupported: true},
		{ID: "ecs.ebmg5s.24xlarge", EniQuantity: 32, EniPrivateIpAddressQuantity: 10, EniIpv6AddressQuantity: 1, EniTotalQuantity: 32},
		{ID: "ecs.g6.large", EniQuantity: 2, EniPrivateIpAddressQuantity: 6, EniIpv6AddressQuantity: 1, EniTotalQuantity: 2},
		{ID: "ecs.c7.xlarge", EniQuantity: 3, EniPrivateIpAddressQuantity: 15, EniIpv6AddressQuantity: 15, EniTotalQuantity: 3 + 4, EniTrunkSupported: true},
		{ID: "ecs.g7.8xlarge", EniQuantity: 8, EniPrivateIpAddressQuantity: 30, EniIpv6AddressQuantity: 30, EniTotalQuantity: 8 + 29, EniTrunkSupported: true},
	}
}

// DefaultState is the world alisim serves with no topology file: region cn-hangzhou, one VPC 192.168.0.0/16
// with its system route table at the default quota of 200, two vSwitches in two zones, and three running
// instances (one of each of the first three documented types), plus one access key pair.
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
