package instancetype

// BuiltinSource says where Builtin's figures come from.
const BuiltinSource = "weft's built-in table (EniQuantity and EniPrivateIpAddressQuantity as " +
	"DescribeInstanceTypes reports them, from Alibaba Cloud's documentation; --instance-type-source api asks the region)"

// Builtin is a small table of instance types with their ENI figures, for planning without an account. alisim
// serves the same table, so a plan made from the API against alisim matches it.
func Builtin() []Type {
	return []Type{
		{ID: "ecs.c7.4xlarge", ENIs: 8, IPv4PerENI: 30, IPv6PerENI: 30, ENIsWithTrunk: 8 + 23, TrunkSupported: true},
		{ID: "ecs.c6.4xlarge", ENIs: 8, IPv4PerENI: 20, IPv6PerENI: 1, ENIsWithTrunk: 8},
		{ID: "ecs.g7.2xlarge", ENIs: 4, IPv4PerENI: 15, IPv6PerENI: 15, ENIsWithTrunk: 4 + 11, TrunkSupported: true},
		{ID: "ecs.ebmg5s.24xlarge", ENIs: 32, IPv4PerENI: 10, IPv6PerENI: 1, ENIsWithTrunk: 32},
		{ID: "ecs.g6.large", ENIs: 2, IPv4PerENI: 6, IPv6PerENI: 1, ENIsWithTrunk: 2},
		{ID: "ecs.c7.xlarge", ENIs: 3, IPv4PerENI: 15, IPv6PerENI: 15, ENIsWithTrunk: 3 + 4, TrunkSupported: true},
		{ID: "ecs.g7.8xlarge", ENIs: 8, IPv4PerENI: 30, IPv6PerENI: 30, ENIsWithTrunk: 8 + 29, TrunkSupported: true},
	}
}
