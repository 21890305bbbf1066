package plan

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/weftnet/weft/cloud/instancetype"
)

// instanceType is an instance type's ENI figures as the planner takes them. This file is the only one that names
// the package defining it, so moving the type is a change here alone.
type instanceType = instancetype.Type

// Input is what a provisioning script knows before the cluster exists.
type Input struct {
	Backends        []string       // to compare; empty: those the other inputs make applicable
	PodCIDRs        []netip.Prefix // the cluster pod CIDR, one per family
	SubnetLen       int            // IPv4 node subnet length; 0: the subnet manager's default
	IPv6SubnetLen   int
	SubnetManager   string // kube (kube-controller-manager node IPAM, the default) or etcd (flannel's allocator)
	ServiceCIDRs    []netip.Prefix
	VPCCIDR         netip.Prefix   // set when the cluster runs in an Alibaba Cloud VPC
	VSwitchCIDRs    []netip.Prefix // the nodes' vSwitches
	PodVSwitchCIDRs []netip.Prefix // vSwitches reserved for ENI pods; empty: pods share VSwitchCIDRs with the nodes
	InstanceTypes   []instancetype.Type
	TypeSource      string // where InstanceTypes' figures come from
	Quota           int    // custom route entries per table; 0: DefaultQuota
	EntriesUsed     int    // custom entries already in the table that are not this cluster's
	Nodes           int    // expected node count; 0: not checked
	MaxPods         int    // kubelet --max-pods; 0: not limited here
	L2Adjacent      bool   // every node on one L2 segment (host-gw's requirement)
}

// InputError is input that cannot be planned at all (the CLI exits 3); Field names the flag.
type InputError struct{ Field, Msg string }

func (e *InputError) Error() string { return e.Field + ": " + e.Msg }

// normalise applies the defaults and refuses input no backend could be planned from, naming the flag.
func normalise(in *Input) error {
	for _, b := range in.Backends {
		if !slices.Contains(AllBackends, b) {
			return &InputError{"--backend", fmt.Sprintf("%q is not one of %s", b, strings.Join(AllBackends, ", "))}
		}
	}
	if in.SubnetManager == "" {
		in.SubnetManager = SubnetManagerKube
	}
	if in.SubnetManager != SubnetManagerKube && in.SubnetManager != SubnetManagerEtcd {
		return &InputError{"--subnet-manager", fmt.Sprintf("%q: expected kube or etcd", in.SubnetManager)}
	}
	if in.Quota == 0 {
		in.Quota = DefaultQuota
	}
	if in.Quota < 1 || in.Quota > MaxQuota {
		return &InputError{"--route-table-quota", fmt.Sprintf("%d: a VPC route table holds 1 to %d custom entries (%d unless raised)", in.Quota, MaxQuota, DefaultQuota)}
	}
	if in.EntriesUsed < 0 || in.EntriesUsed > in.Quota {
		return &InputError{"--route-entries-used", fmt.Sprintf("%d: expected 0..%d (the quota)", in.EntriesUsed, in.Quota)}
	}
	if in.Nodes < 0 || in.Nodes > MaxCount {
		return &InputError{"--nodes", fmt.Sprintf("%d: expected a node count from 1 to 2^53-1, 0 for none", in.Nodes)}
	}
	if in.SubnetLen < 0 || in.SubnetLen > 32 {
		return &InputError{"--node-subnet-len", fmt.Sprintf("%d: expected an IPv4 prefix length from 1 to 32, 0 for the default", in.SubnetLen)}
	}
	if in.IPv6SubnetLen < 0 || in.IPv6SubnetLen > 128 {
		return &InputError{"--ipv6-node-subnet-len", fmt.Sprintf("%d: expected an IPv6 prefix length from 1 to 128, 0 for the default", in.IPv6SubnetLen)}
	}
	if in.MaxPods < 0 {
		return &InputError{"--max-pods", fmt.Sprintf("%d: expected kubelet's --max-pods, 0 for none", in.MaxPods)}
	}
	var v4, v6 int
	for i, p := range in.PodCIDRs {
		in.PodCIDRs[i] = p.Masked()
		if p.Addr().Is4() {
			v4++
		} else {
			v6++
		}
	}
	if v4 > 1 || v6 > 1 {
		return &InputError{"--pod-cidr", "give at most one IPv4 and one IPv6 CIDR (dual stack)"}
	}
	if in.SubnetLen != 0 && v4 == 0 {
		return &InputError{"--node-subnet-len", "set without an IPv4 --pod-cidr"}
	}
	if in.IPv6SubnetLen != 0 && v6 == 0 {
		return &InputError{"--ipv6-node-subnet-len", "set without an IPv6 --pod-cidr"}
	}
	if in.VPCCIDR.IsValid() && !in.VPCCIDR.Addr().Is4() {
		return &InputError{"--vpc-cidr", fmt.Sprintf("%s: the VPC's primary CIDR is IPv4", in.VPCCIDR)}
	}
	sws := append(append([]netip.Prefix(nil), in.VSwitchCIDRs...), in.PodVSwitchCIDRs...)
	for i, sw := range sws {
		field := "--vswitch-cidr"
		if i >= len(in.VSwitchCIDRs) {
			field = "--pod-vswitch-cidr"
		}
		if !sw.Addr().Is4() || sw.Bits() < 16 || sw.Bits() > 29 {
			return &InputError{field, fmt.Sprintf("%s: a vSwitch CIDR is IPv4, /16 to /29", sw)}
		}
		if sw.Masked() != sw {
			return &InputError{field, fmt.Sprintf("%s: not a network address (%s)", sw, sw.Masked())}
		}
		if !in.VPCCIDR.IsValid() {
			return &InputError{field, "needs --vpc-cidr, the VPC it belongs to"}
		}
		if !contains(in.VPCCIDR, sw) {
			return &InputError{field, fmt.Sprintf("%s is not inside the VPC %s", sw, in.VPCCIDR)}
		}
		for _, o := range sws[:i] {
			if o.Overlaps(sw) {
				return &InputError{field, fmt.Sprintf("%s overlaps the vSwitch %s", sw, o)}
			}
		}
	}
	seen := map[string]bool{}
	for _, t := range in.InstanceTypes {
		if seen[t.ID] {
			return &InputError{"--instance-type", fmt.Sprintf("%s given twice", t.ID)}
		}
		seen[t.ID] = true
	}
	return nil
}

// InputSummary echoes the input with defaults applied.
type InputSummary struct {
	PodCIDRs        []string           `json:"podCIDRs"`
	SubnetLen       int                `json:"subnetLen,omitempty"`
	IPv6SubnetLen   int                `json:"ipv6SubnetLen,omitempty"`
	SubnetManager   string             `json:"subnetManager"`
	ServiceCIDRs    []string           `json:"serviceCIDRs"`
	VPCCIDR         string             `json:"vpcCIDR,omitempty"`
	VSwitchCIDRs    []string           `json:"vswitchCIDRs"`
	PodVSwitchCIDRs []string           `json:"podVSwitchCIDRs"`
	InstanceTypes   []InstanceTypeInfo `json:"instanceTypes"`
	TypeSource      string             `json:"instanceTypeSource,omitempty"`
	Quota           int                `json:"routeTableQuota"`
	EntriesUsed     int                `json:"routeEntriesUsed"`
	Nodes           int                `json:"nodes"`
	MaxPods         int                `json:"maxPods"`
	L2Adjacent      bool               `json:"l2Adjacent"`
}

// InstanceTypeInfo is an instance type's ENI figures and what they allow.
type InstanceTypeInfo struct {
	ID               string `json:"id"`
	ENIs             int    `json:"eniQuantity"`
	IPv4PerENI       int    `json:"eniPrivateIpAddressQuantity"`
	IPv6PerENI       int    `json:"eniIpv6AddressQuantity"`
	SharedENIPods    int    `json:"sharedENIPods"`
	ExclusiveENIPods int    `json:"exclusiveENIPods"`
	TrunkENIPods     int    `json:"trunkENIPods"` // member ENIs of a trunk ENI (0 without trunking)
	// ExclusiveTrunkENIPods: the eni backend's exclusive pods with enable_eni_trunking, what weftd enforces: the
	// trunk ENI takes a slot, so EniQuantity - 2 ordinary ENIs plus the members (0 without trunking).
	ExclusiveTrunkENIPods int `json:"exclusiveTrunkENIPods"`
}

// summarise is the input echoed in the plan, with defaults and each instance type's derived pod figures.
func summarise(in Input) InputSummary {
	strs := func(ps []netip.Prefix) []string {
		out := []string{}
		for _, p := range ps {
			out = append(out, p.String())
		}
		return out
	}
	s := InputSummary{PodCIDRs: strs(in.PodCIDRs), SubnetManager: in.SubnetManager, ServiceCIDRs: strs(in.ServiceCIDRs),
		VSwitchCIDRs: strs(in.VSwitchCIDRs), PodVSwitchCIDRs: strs(in.PodVSwitchCIDRs), InstanceTypes: []InstanceTypeInfo{},
		TypeSource: in.TypeSource, Quota: in.Quota, EntriesUsed: in.EntriesUsed, Nodes: in.Nodes, MaxPods: in.MaxPods,
		L2Adjacent: in.L2Adjacent}
	if in.VPCCIDR.IsValid() {
		s.VPCCIDR = in.VPCCIDR.String()
	}
	for _, f := range podFamilies(in) {
		if f.prefix.Addr().Is4() {
			s.SubnetLen = f.slen
		} else {
			s.IPv6SubnetLen = f.slen
		}
	}
	for _, t := range in.InstanceTypes {
		s.InstanceTypes = append(s.InstanceTypes, InstanceTypeInfo{ID: t.ID, ENIs: t.ENIs, IPv4PerENI: t.IPv4PerENI,
			IPv6PerENI: t.IPv6PerENI, SharedENIPods: t.SharedENIPods(), ExclusiveENIPods: t.ExclusiveENIPods(),
			TrunkENIPods: t.TrunkPods(), ExclusiveTrunkENIPods: t.ExclusiveTrunkPods()})
	}
	if len(in.InstanceTypes) == 0 {
		s.TypeSource = ""
	}
	return s
}
