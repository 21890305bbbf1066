// Package plan answers, before a cluster exists, "which backend, and how far will this plan scale?": for each
// backend the pods per node, nodes and pods per cluster, the limit that binds (node subnets, route-table quota,
// ENI count, addresses per ENI, vSwitch addresses, kubelet max-pods), the errors that would make the plan fail
// (overlapping ranges, a pod CIDR too small for the node count, more nodes than route entries) and a recommended
// backend with its reasons. It is pure: instance-type figures come in with the input (from DescribeInstanceTypes
// or the built-in table), so `weft plan` and its tests share every rule.
package plan

import (
	"fmt"
	"math/big"
	"net/netip"
	"slices"
	"strings"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/subnet"
)

// SchemaVersion names the JSON layout of Plan; it changes only when a field changes meaning or goes away.
const SchemaVersion = "weft.plan/v1"

// Backends that plan knows, in the order they are reported.
const (
	VXLAN        = "vxlan"
	HostGW       = "host-gw"
	AliVPC       = "ali-vpc"
	ENI          = "eni"           // pods on secondary addresses of shared ENIs
	ENIExclusive = "eni-exclusive" // one ENI per pod
)

// AllBackends lists every backend plan evaluates.
var AllBackends = []string{VXLAN, HostGW, AliVPC, ENI, ENIExclusive}

// Limits the service and Kubernetes put on a plan.
const (
	DefaultQuota      = 200 // custom entries per VPC route table
	MaxQuota          = 1000
	VSwitchReserved   = 4   // the first and the last three addresses of a vSwitch
	KubeletMaxPods    = 110 // kubelet's default --max-pods
	nodeIPAMMaxDiff   = 16  // kube-controller-manager: node mask at most 16 bits longer than the cluster CIDR's
	vxlanOverhead     = 50  // bytes of outer IPv4, UDP and VXLAN headers
	MaxCount          = 1<<53 - 1
	SubnetManagerKube = "kube"
	SubnetManagerEtcd = "etcd"
)

// cloudReserved is where a VPC route destination may not point (InvalidCidrBlock).
var cloudReserved = netip.MustParsePrefix("100.64.0.0/10")

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
	InstanceTypes   []aliyun.InstanceType
	TypeSource      string // where InstanceTypes' figures come from
	Quota           int    // custom route entries per table; 0: DefaultQuota
	EntriesUsed     int    // custom entries already in the table that are not this cluster's
	Nodes           int    // expected node count; 0: not checked
	MaxPods         int    // kubelet --max-pods; 0: not limited here
	L2Adjacent      bool   // every node on one L2 segment (host-gw's requirement)
}

// Plan is the answer; its JSON form is the stable interface for scripts (SchemaVersion).
type Plan struct {
	SchemaVersion  string          `json:"schemaVersion"`
	Input          InputSummary    `json:"input"`
	Backends       []Result        `json:"backends"`
	Recommendation *Recommendation `json:"recommendation"` // null when no backend fits
	// Status is ok (a backend is recommended and every one asked for fits), partial (a backend is recommended
	// but one asked for does not fit) or fail (none fits); the CLI's exit code is 0, 1 or 2 accordingly.
	Status string `json:"status"`
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
	TrunkENIPods     int    `json:"trunkENIPods"` // member ENIs of a trunk ENI; no weft backend uses them yet
}

// Result is one backend's answer. Counts saturate at MaxCount (IPv6 ranges are larger than any cluster).
type Result struct {
	Backend         string    `json:"backend"`
	Fits            bool      `json:"fits"` // no errors
	PodsPerNode     int64     `json:"podsPerNode"`
	NodesPerCluster int64     `json:"nodesPerCluster"`
	PodsPerCluster  int64     `json:"podsPerCluster"`
	PodLimit        string    `json:"podLimit"`  // the limit that binds pods per node
	NodeLimit       string    `json:"nodeLimit"` // the limit that binds nodes per cluster
	Limits          []Limit   `json:"limits"`
	Errors          []Finding `json:"errors"`
	Warnings        []Finding `json:"warnings"`
}

// Limit is one ceiling: Scope "node" caps pods per node, "cluster" caps nodes per cluster.
type Limit struct {
	Name   string `json:"name"`
	Scope  string `json:"scope"`
	Value  int64  `json:"value"`
	Detail string `json:"detail"`
}

// Limit names.
const (
	LimitSubnetAddresses  = "subnet-addresses"
	LimitMaxPods          = "max-pods"
	LimitSubnets          = "subnets"
	LimitRouteTableQuota  = "route-table-quota"
	LimitAddressesPerENI  = "addresses-per-eni"
	LimitENICount         = "eni-count"
	LimitVSwitchAddresses = "vswitch-addresses"
)

// Finding is an error or warning with a stable code.
type Finding struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Recommendation is the backend plan suggests and why.
type Recommendation struct {
	Backend string   `json:"backend"`
	Reasons []string `json:"reasons"`
}

// InputError is input that cannot be planned at all (the CLI exits 3); Field names the flag.
type InputError struct{ Field, Msg string }

func (e *InputError) Error() string { return e.Field + ": " + e.Msg }

// Make evaluates the input.
func Make(in Input) (*Plan, error) {
	if err := normalise(&in); err != nil {
		return nil, err
	}
	p := &Plan{SchemaVersion: SchemaVersion, Input: summarise(in)}
	backends := in.Backends
	if len(backends) == 0 {
		backends = applicable(in)
	}
	for _, b := range AllBackends {
		if slices.Contains(backends, b) {
			p.Backends = append(p.Backends, evaluate(in, b))
		}
	}
	p.Recommendation = recommend(in, p.Backends)
	switch {
	case p.Recommendation == nil:
		p.Status = "fail"
	case slices.ContainsFunc(p.Backends, func(r Result) bool { return !r.Fits && slices.Contains(in.Backends, r.Backend) }):
		p.Status = "partial"
	default:
		p.Status = "ok"
	}
	return p, nil
}

// ExitCode is the CLI's answer for scripts: 0 ok, 1 partial, 2 fail.
func (p *Plan) ExitCode() int {
	switch p.Status {
	case "ok":
		return 0
	case "partial":
		return 1
	}
	return 2
}

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
	if in.Nodes < 0 {
		return &InputError{"--nodes", fmt.Sprintf("%d: expected a node count, 0 for none", in.Nodes)}
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

func contains(outer, inner netip.Prefix) bool {
	return outer.Bits() <= inner.Bits() && outer.Contains(inner.Addr())
}

// applicable is the backends worth comparing when none are named: the overlays always, ali-vpc inside a VPC,
// the ENI modes when there are instance types to size them.
func applicable(in Input) []string {
	out := []string{VXLAN, HostGW}
	if in.VPCCIDR.IsValid() {
		out = append(out, AliVPC)
		if len(in.InstanceTypes) > 0 {
			out = append(out, ENI, ENIExclusive)
		}
	}
	return out
}

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
			TrunkENIPods: t.TrunkPods()})
	}
	if len(in.InstanceTypes) == 0 {
		s.TypeSource = ""
	}
	return s
}

// family is one pod CIDR cut into node subnets.
type family struct {
	prefix   netip.Prefix
	slen     int
	subnets  int64 // node subnets the subnet manager hands out
	perNode  int64 // pod addresses in one node subnet
	problems []Finding
}

func podFamilies(in Input) []family {
	var out []family
	for _, p := range in.PodCIDRs {
		out = append(out, cut(in, p))
	}
	return out
}

// cut applies the subnet manager's rules: kube-controller-manager hands out every node subnet of the cluster
// CIDR (node mask at most 16 bits longer); flannel's etcd allocator skips the first and honours upstream's
// SubnetLen rules (subnet.ValidateEtcd, the same code weftd runs).
func cut(in Input, p netip.Prefix) family {
	bits := p.Addr().BitLen()
	v6 := bits == 128
	f := family{prefix: p, slen: in.SubnetLen}
	name, flag := "SubnetLen", "--node-subnet-len"
	if v6 {
		f.slen, name, flag = in.IPv6SubnetLen, "IPv6SubnetLen", "--ipv6-node-subnet-len"
	}
	bad := func(code, format string, a ...any) family {
		f.problems = append(f.problems, Finding{code, fmt.Sprintf(format, a...)})
		return f
	}
	if in.SubnetManager == SubnetManagerEtcd {
		c := &subnet.Config{EnableIPv4: !v6, EnableIPv6: v6}
		if v6 {
			c.IPv6Network, c.IPv6SubnetLen = p, f.slen
		} else {
			c.Network, c.SubnetLen = p, f.slen
		}
		if err := c.ValidateEtcd(); err != nil {
			return bad("InvalidNodeSubnet", "%v (flannel's etcd allocator)", err)
		}
		min, max := c.SubnetMin, c.SubnetMax
		f.slen = c.SubnetLen
		if v6 {
			min, max, f.slen = c.IPv6SubnetMin, c.IPv6SubnetMax, c.IPv6SubnetLen
		}
		span := new(big.Int).Sub(addrInt(max), addrInt(min))
		span.Rsh(span, uint(bits-f.slen))
		f.subnets = saturate(span.Add(span, big.NewInt(1)))
	} else {
		if f.slen == 0 {
			f.slen = 24
			if v6 {
				f.slen = 64
			}
		}
		switch {
		case f.slen < p.Bits():
			return bad("InvalidNodeSubnet", "%s /%d is shorter than the pod CIDR %s", flag, f.slen, p)
		case f.slen-p.Bits() > nodeIPAMMaxDiff:
			return bad("InvalidNodeSubnet", "%s /%d is more than %d bits longer than the pod CIDR %s: kube-controller-manager refuses it (at most 65536 node subnets)",
				flag, f.slen, nodeIPAMMaxDiff, p)
		}
		f.subnets = pow2(f.slen - p.Bits())
	}
	// host-local hands out the subnet minus its network address, the bridge's gateway (.1) and, in IPv4, the
	// broadcast address.
	reserved := int64(3)
	if v6 {
		reserved = 2
	}
	f.perNode = sub(pow2(bits-f.slen), reserved)
	if f.perNode < 1 {
		return bad("InvalidNodeSubnet", "%s /%d leaves no pod address in a node subnet (%s)", flag, f.slen, name)
	}
	return f
}

func addrInt(a netip.Addr) *big.Int { return new(big.Int).SetBytes(a.AsSlice()) }

func pow2(n int) int64 {
	if n >= 53 {
		return MaxCount
	}
	return 1 << n
}

func saturate(x *big.Int) int64 {
	if x.Cmp(big.NewInt(MaxCount)) > 0 {
		return MaxCount
	}
	return x.Int64()
}

func sub(a, b int64) int64 {
	if a == MaxCount {
		return a
	}
	return a - b
}

func mul(a, b int64) int64 {
	if a == 0 || b == 0 {
		return 0
	}
	if a > MaxCount/b {
		return MaxCount
	}
	return a * b
}

// builder collects one backend's limits and findings.
type builder struct {
	r Result
}

func (b *builder) limit(name, scope string, v int64, format string, a ...any) {
	b.r.Limits = append(b.r.Limits, Limit{Name: name, Scope: scope, Value: v, Detail: fmt.Sprintf(format, a...)})
}

func (b *builder) err(code, format string, a ...any) {
	b.r.Errors = append(b.r.Errors, Finding{code, fmt.Sprintf(format, a...)})
}

func (b *builder) warn(code, format string, a ...any) {
	b.r.Warnings = append(b.r.Warnings, Finding{code, fmt.Sprintf(format, a...)})
}

// finish picks the binding limits (the first of equal ones, in the order they were added) and the totals.
func (b *builder) finish(in Input) Result {
	r := &b.r
	r.PodsPerNode, r.NodesPerCluster = -1, -1
	for _, l := range r.Limits {
		switch {
		case l.Scope == "node" && (r.PodsPerNode < 0 || l.Value < r.PodsPerNode):
			r.PodsPerNode, r.PodLimit = l.Value, l.Name
		case l.Scope == "cluster" && (r.NodesPerCluster < 0 || l.Value < r.NodesPerCluster):
			r.NodesPerCluster, r.NodeLimit = l.Value, l.Name
		}
	}
	r.PodsPerNode, r.NodesPerCluster = max(r.PodsPerNode, 0), max(r.NodesPerCluster, 0)
	r.PodsPerCluster = mul(r.PodsPerNode, r.NodesPerCluster)
	if in.MaxPods == 0 && r.PodsPerNode > KubeletMaxPods {
		b.warn("KubeletMaxPods", "kubelet runs at most %d pods per node by default: set maxPods to %d in the kubelet configuration to use them all",
			KubeletMaxPods, min(r.PodsPerNode, 1<<20))
	}
	r.Fits = len(r.Errors) == 0
	if r.Limits == nil {
		r.Limits = []Limit{}
	}
	if r.Errors == nil {
		r.Errors = []Finding{}
	}
	if r.Warnings == nil {
		r.Warnings = []Finding{}
	}
	return *r
}

func evaluate(in Input, backend string) Result {
	b := &builder{r: Result{Backend: backend}}
	checkCommon(in, b, backend)
	switch backend {
	case VXLAN, HostGW, AliVPC:
		overlay(in, b, backend)
	case ENI, ENIExclusive:
		eni(in, b, backend)
	}
	return b.finish(in)
}

// checkCommon finds the overlaps that break any backend: services against the VPC, and (for the backends
// with a pod CIDR) pods against services and the VPC.
func checkCommon(in Input, b *builder, backend string) {
	podCIDR := backend == VXLAN || backend == HostGW || backend == AliVPC
	for _, s := range in.ServiceCIDRs {
		if in.VPCCIDR.IsValid() && s.Overlaps(in.VPCCIDR) {
			b.err("ServiceCIDROverlapsVPC", "the service CIDR %s overlaps the VPC %s: pods could not reach the VPC addresses it shadows", s, in.VPCCIDR)
		}
		if !podCIDR {
			for _, sw := range in.PodVSwitchCIDRs {
				if s.Overlaps(sw) {
					b.err("ServiceCIDROverlapsVSwitch", "the service CIDR %s overlaps the pod vSwitch %s", s, sw)
				}
			}
			continue
		}
		for _, p := range in.PodCIDRs {
			if s.Overlaps(p) {
				b.err("PodCIDROverlapsServiceCIDR", "the pod CIDR %s overlaps the service CIDR %s", p, s)
			}
		}
	}
	if !podCIDR {
		return
	}
	for _, p := range in.PodCIDRs {
		if in.VPCCIDR.IsValid() && p.Overlaps(in.VPCCIDR) {
			b.err("PodCIDROverlapsVPC", "the pod CIDR %s overlaps the VPC %s: pod and VPC addresses would collide", p, in.VPCCIDR)
		}
	}
}

func overlay(in Input, b *builder, backend string) {
	fams := podFamilies(in)
	if len(fams) == 0 {
		b.err("PodCIDRRequired", "%s gives each node a subnet of the pod CIDR: set --pod-cidr", backend)
		return
	}
	for _, f := range fams {
		b.r.Errors = append(b.r.Errors, f.problems...)
		if len(f.problems) > 0 {
			continue
		}
		how := "kube-controller-manager hands out every one"
		if in.SubnetManager == SubnetManagerEtcd {
			how = "flannel's etcd allocator skips the first"
		}
		excluded := "network and gateway"
		if f.prefix.Addr().Is4() {
			excluded = "network, gateway and broadcast"
		}
		b.limit(LimitSubnetAddresses, "node", f.perNode, "a /%d node subnet holds %s pod addresses (%s excluded)",
			f.slen, count(f.perNode), excluded)
		b.limit(LimitSubnets, "cluster", f.subnets, "%s cut into /%d node subnets gives %s (%s)", f.prefix, f.slen, count(f.subnets), how)
		if in.Nodes > 0 && int64(in.Nodes) > f.subnets {
			b.err("PodCIDRTooSmall", "%d nodes expected but %s cut into /%d gives %s node subnets: use a /%d pod CIDR or a longer node subnet",
				in.Nodes, f.prefix, f.slen, count(f.subnets), neededPrefix(in, f))
		}
	}
	if in.MaxPods > 0 {
		b.limit(LimitMaxPods, "node", int64(in.MaxPods), "kubelet --max-pods")
	}
	switch backend {
	case VXLAN:
		if in.VPCCIDR.IsValid() {
			b.warn("Encapsulation", "every pod packet carries %d bytes of VXLAN headers and the pod MTU is that much below the VPC's", vxlanOverhead)
		}
	case HostGW:
		if in.VPCCIDR.IsValid() {
			b.err("HostGWNeedsL2", "an Alibaba Cloud VPC forwards only to vSwitch addresses and route entries, so pod packets sent by host-gw's next-hop routes are dropped: use ali-vpc")
		} else if !in.L2Adjacent {
			b.warn("HostGWNeedsL2", "host-gw needs every node on one L2 segment; pass --l2-adjacent when they are")
		}
	case AliVPC:
		aliVPC(in, b, fams)
	}
}

// neededPrefix is the longest pod CIDR prefix whose node subnets cover the expected nodes.
func neededPrefix(in Input, f family) int {
	need := in.Nodes
	if in.SubnetManager == SubnetManagerEtcd {
		need++ // the first subnet is skipped
	}
	bits := 0
	for (1 << bits) < need {
		bits++
	}
	return max(f.slen-bits, 0)
}

func aliVPC(in Input, b *builder, fams []family) {
	if !in.VPCCIDR.IsValid() {
		b.warn("NoVPC", "no --vpc-cidr: ali-vpc runs only in an Alibaba Cloud VPC, and overlaps with it were not checked")
	}
	for _, f := range fams {
		if f.prefix.Overlaps(cloudReserved) {
			b.err("PodCIDRReserved", "the pod CIDR %s overlaps %s, which a VPC route may not point into (InvalidCidrBlock)", f.prefix, cloudReserved)
		}
		for _, sw := range append(append([]netip.Prefix(nil), in.VSwitchCIDRs...), in.PodVSwitchCIDRs...) {
			if f.prefix.Overlaps(sw) {
				b.err("PodCIDROverlapsVSwitch", "the pod CIDR %s overlaps the vSwitch %s: a route entry may not point into a vSwitch (InvalidCidrBlock)", f.prefix, sw)
			}
		}
	}
	perNode := len(fams) // one entry per family and node, all in the same table
	free := in.Quota - in.EntriesUsed
	nodes := int64(free / max(perNode, 1))
	detail := fmt.Sprintf("%d custom entries per route table, %d taken by others: one entry per node", in.Quota, in.EntriesUsed)
	if perNode > 1 {
		detail = fmt.Sprintf("%d custom entries per route table, %d taken by others: %d entries (IPv4 and IPv6) per node", in.Quota, in.EntriesUsed, perNode)
	}
	b.limit(LimitRouteTableQuota, "cluster", nodes, "%s", detail)
	if in.Nodes > 0 && int64(in.Nodes) > nodes {
		fix := fmt.Sprintf("ask for a quota of at least %d (at most %d), or use eni", in.Nodes*perNode+in.EntriesUsed, MaxQuota)
		if in.Nodes*perNode+in.EntriesUsed > MaxQuota {
			fix = fmt.Sprintf("even the largest quota (%d) is too small: use eni or vxlan", MaxQuota)
		}
		b.err("NodesOverQuota", "%d nodes expected but the route table has room for %d: %s", in.Nodes, nodes, fix)
	} else if in.Nodes > 0 && float64(in.Nodes*perNode+in.EntriesUsed) >= 0.8*float64(in.Quota) {
		b.warn("QuotaNearlyFull", "%d nodes use %d of %d route entries (80 %% is weft quota's warning threshold)",
			in.Nodes, in.Nodes*perNode+in.EntriesUsed, in.Quota)
	}
}

func eni(in Input, b *builder, backend string) {
	if len(in.InstanceTypes) == 0 {
		b.err("InstanceTypeRequired", "%s sizes pods per node from the instance type: set --instance-type", backend)
		return
	}
	if !in.VPCCIDR.IsValid() {
		b.err("VPCRequired", "%s gives pods VPC addresses: set --vpc-cidr and the vSwitches", backend)
	}
	if len(in.PodCIDRs) > 0 {
		b.warn("PodCIDRUnused", "%s does not use --pod-cidr: pods take addresses of the vSwitches", backend)
	}
	// The smallest type binds pods per node; the largest binds how many nodes the vSwitches can fill.
	var smallest, largest aliyun.InstanceType
	pods := func(t aliyun.InstanceType) int64 {
		if backend == ENI {
			return int64(t.SharedENIPods())
		}
		return int64(t.ExclusiveENIPods())
	}
	for i, t := range in.InstanceTypes {
		if i == 0 || pods(t) < pods(smallest) {
			smallest = t
		}
		if i == 0 || pods(t) > pods(largest) {
			largest = t
		}
	}
	if backend == ENI {
		b.limit(LimitAddressesPerENI, "node", pods(smallest), "%s: (%d ENIs - the primary) x %d addresses per ENI",
			smallest.ID, smallest.ENIs, smallest.IPv4PerENI)
	} else {
		b.limit(LimitENICount, "node", pods(smallest), "%s: %d ENIs - the primary, one per pod", smallest.ID, smallest.ENIs)
	}
	if pods(smallest) == 0 {
		b.err("NoENIPods", "%s has no secondary ENI, so it cannot hold %s pods", smallest.ID, backend)
	}
	if in.MaxPods > 0 {
		b.limit(LimitMaxPods, "node", int64(in.MaxPods), "kubelet --max-pods")
	}
	sws, shared := in.PodVSwitchCIDRs, false
	if len(sws) == 0 {
		sws, shared = in.VSwitchCIDRs, true
	}
	if len(sws) == 0 {
		if in.VPCCIDR.IsValid() {
			b.warn("VSwitchesUnknown", "no --vswitch-cidr or --pod-vswitch-cidr: the vSwitch address pool was not checked")
		}
		return
	}
	var addrs int64
	for _, sw := range sws {
		addrs += pow2(32-sw.Bits()) - VSwitchReserved
	}
	perNode := pods(largest)
	if in.MaxPods > 0 {
		perNode = min(perNode, int64(in.MaxPods))
	}
	what := fmt.Sprintf("%d pod addresses", perNode)
	if shared {
		perNode++ // the node's own primary address comes from the same vSwitches
		what += " and its primary address"
	}
	nodes := addrs / max(perNode, 1)
	b.limit(LimitVSwitchAddresses, "cluster", nodes, "%d vSwitch addresses (%d reserved in each of %d): a full %s node takes %s",
		addrs, VSwitchReserved, len(sws), largest.ID, what)
	if in.Nodes > 0 && int64(in.Nodes) > nodes {
		b.err("VSwitchAddressesExhausted", "%d full nodes need %d addresses but the vSwitches have %d: add pod vSwitches",
			in.Nodes, int64(in.Nodes)*perNode, addrs)
	}
}

func recommend(in Input, results []Result) *Recommendation {
	fits := map[string]Result{}
	for _, r := range results {
		if r.Fits {
			fits[r.Backend] = r
		}
	}
	order := []string{VXLAN, HostGW, AliVPC, ENI, ENIExclusive}
	switch {
	case in.VPCCIDR.IsValid():
		order = []string{AliVPC, ENI, VXLAN, ENIExclusive, HostGW}
	case in.L2Adjacent:
		order = []string{HostGW, VXLAN, AliVPC, ENI, ENIExclusive}
	}
	for _, name := range order {
		r, ok := fits[name]
		if !ok {
			continue
		}
		rec := &Recommendation{Backend: name, Reasons: []string{fmt.Sprintf("%s pods per node and %s nodes (%s pods) per cluster; %s binds the nodes",
			count(r.PodsPerNode), count(r.NodesPerCluster), count(r.PodsPerCluster), r.NodeLimit)}}
		switch name {
		case AliVPC:
			rec.Reasons = append(rec.Reasons, "no encapsulation: pod traffic crosses the VPC at underlay speed with the full MTU",
				"pods keep their addresses towards the VPC (no NAT inside it)")
		case ENI:
			rec.Reasons = append(rec.Reasons, "pods hold VPC addresses on the nodes' ENIs: no route-table entry per node, so the route-table quota does not cap the cluster")
		case ENIExclusive:
			rec.Reasons = append(rec.Reasons, "each pod owns an ENI: the full interface's bandwidth and security groups per pod, at few pods per node")
		case HostGW:
			rec.Reasons = append(rec.Reasons, "no encapsulation: nodes on one L2 segment route pod subnets to each other directly")
		case VXLAN:
			rec.Reasons = append(rec.Reasons, "works over any IP underlay with nothing to provision; costs 50 bytes of MTU and some CPU per packet")
		}
		for _, o := range order {
			if o == name {
				break
			}
			for _, res := range results {
				if res.Backend == o && !res.Fits {
					rec.Reasons = append(rec.Reasons, fmt.Sprintf("not %s: %s", o, res.Errors[0].Message))
				}
			}
		}
		return rec
	}
	return nil
}

// count prints a saturated count readably.
func count(n int64) string {
	if n >= MaxCount {
		return "more than 2^53"
	}
	return fmt.Sprint(n)
}
