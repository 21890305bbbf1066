// Package instancetype holds what weft knows about ECS instance types without asking the cloud: the ENI figures
// of a type (as DescribeInstanceTypes reports them), the pod capacities derived from them, and a small built-in
// table for planning without an account. It imports nothing from the Alibaba Cloud SDK, so the planner and the
// quota report can use it without linking the SDK; cloud/aliyun's DescribeInstanceTypes returns this Type.
package instancetype

// Type carries the ENI figures of an ECS instance type.
type Type struct {
	ID             string
	ENIs           int  // EniQuantity, the primary ENI included
	IPv4PerENI     int  // EniPrivateIpAddressQuantity, the primary address included
	IPv6PerENI     int  // EniIpv6AddressQuantity
	ENIsWithTrunk  int  // EniTotalQuantity
	TrunkSupported bool // EniTrunkSupported
}

// SharedENIPods is the pods a node of this type can hold on secondary IPs of shared ENIs.
func (t Type) SharedENIPods() int { return max(t.ENIs-1, 0) * t.IPv4PerENI }

// ExclusiveENIPods is the pods a node of this type can hold with one ENI each.
func (t Type) ExclusiveENIPods() int { return max(t.ENIs-1, 0) }

// TrunkPods is the pods a node of this type can hold on trunk member ENIs (0 without trunking).
func (t Type) TrunkPods() int {
	if !t.TrunkSupported {
		return 0
	}
	return max(t.ENIsWithTrunk-t.ENIs, 0)
}

// ExclusiveTrunkPods is the pods a node of this type holds with one ENI each when it uses trunking (the eni
// backend's enable_eni_trunking): the trunk ENI takes a slot, so EniQuantity - 2 ordinary ENIs, plus the member
// ENIs (TrunkPods); 0 without trunking.
func (t Type) ExclusiveTrunkPods() int {
	if t.TrunkPods() == 0 {
		return 0
	}
	return max(t.ENIs-2, 0) + t.TrunkPods()
}
