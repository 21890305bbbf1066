package plan

import "fmt"

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
