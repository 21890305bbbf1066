// Package plan answers, before a cluster exists, "which backend, and how far will this plan scale?": for each
// backend the pods per node, nodes and pods per cluster, the limit that binds (node subnets, route-table quota,
// ENI count, addresses per ENI, vSwitch addresses, kubelet max-pods), the errors that would make the plan fail
// (overlapping ranges, a pod CIDR too small for the node count, more nodes than route entries) and a recommended
// backend with its reasons. It is pure: instance-type figures come in with the input (from DescribeInstanceTypes
// or the built-in table), so `weft plan` and its tests share every rule.
package plan

import "slices"

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
	SubnetManagerKube = "kube"
	SubnetManagerEtcd = "etcd"
)

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

// evaluate runs the shared checks and the backend's own rules, then picks the binding limits.
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
