package main

// What the table must hold once weftd has caught up with the bulk load, from the engine's own pure renderer
// (internal/policy/ruleset.Render over the generated objects): the bulk load is timed to that, not to a guess.

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/weftnet/weft/internal/policy"
	"github.com/weftnet/weft/internal/policy/ruleset"
)

// expectedTable renders the scale objects and counts what the kernel should have: chains (the pods' and the
// base chain), sets, map elements, counters. Rules are not compared (the kernel's count includes the base and
// drop rules the renderer leaves to the transaction).
func expectedTable(o options, node string) (tableSize, error) {
	nsLabels := map[string]labels.Set{}
	for _, ns := range scaleNamespaces(o.namespaces) {
		l := labels.Set{corev1.LabelMetadataName: ns.Name}
		for k, v := range ns.Labels {
			l[k] = v
		}
		nsLabels[ns.Name] = l
	}
	var pods []*policy.Pod
	perNS := o.pods / o.namespaces
	for i := 0; i < o.pods; i++ {
		p := scalePod(nsName(i%o.namespaces), node, i/o.namespaces, perNS)
		p.Status = running(podIP(i))
		pods = append(pods, policy.PodOf(p))
	}
	var pols []*policy.Policy
	for _, np := range append(scalePolicies(o.policies, o.namespaces), flipPolicy()) {
		p, err := policy.Compile(np)
		if err != nil {
			return tableSize{}, fmt.Errorf("policy %s/%s: %w", np.Namespace, np.Name, err)
		}
		pols = append(pols, p)
	}
	rs := ruleset.Render(ruleset.Input{Policies: pols, Pods: pods, Local: func(*policy.Pod) bool { return true },
		Namespaces: func(n string) (labels.Set, bool) { l, ok := nsLabels[n]; return l, ok }})
	t := tableSize{chains: len(rs.Chains) + 1, sets: len(rs.Sets), counters: len(rs.Counters)}
	for _, m := range rs.Maps {
		t.mapElems += len(m)
	}
	for _, s := range rs.Sets {
		t.setElems += len(s.Elements)
	}
	return t, nil
}

// caughtUp says whether the kernel's table has what expectedTable says (set elements are not compared: nft
// lists an interval set's elements as ranges, not as the renderer's prefixes).
func caughtUp(got, want tableSize) bool {
	return got.chains == want.chains && got.sets == want.sets && got.mapElems == want.mapElems && got.counters == want.counters
}
