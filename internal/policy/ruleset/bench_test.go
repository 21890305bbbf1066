package ruleset

import (
	"fmt"
	"net/netip"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/weftnet/weft/internal/policy"
)

// scaleInput is the scale: 1,000 pods in 20 namespaces on this node, 500 policies (each selecting one
// app of its namespace, admitting two other apps and one namespace on two ports).
func scaleInput(b testing.TB) Input {
	var pods []*policy.Pod
	for i := range 1000 {
		pods = append(pods, &policy.Pod{Namespace: fmt.Sprintf("ns%d", i%20), Name: fmt.Sprintf("p%d", i),
			Labels: map[string]string{"app": fmt.Sprintf("app%d", i%50)},
			IPs:    []netip.Addr{netip.AddrFrom4([4]byte{10, 244, byte(i / 250), byte(i % 250)})}})
	}
	var nps []*networkingv1.NetworkPolicy
	for i := range 500 {
		spec := networkingv1.NetworkPolicySpec{PodSelector: *sel("app", fmt.Sprintf("app%d", i%50)),
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{
				{PodSelector: sel("app", fmt.Sprintf("app%d", (i+1)%50))}, {PodSelector: sel("app", fmt.Sprintf("app%d", (i+2)%50))},
				{NamespaceSelector: sel("team", fmt.Sprintf("t%d", i%5))}}}}}
		nps = append(nps, np(fmt.Sprintf("ns%d", i%20), fmt.Sprintf("pol%d", i), spec))
	}
	ns := func(n string) (labels.Set, bool) { return labels.Set{"team": "t" + n[len(n)-1:]}, true }
	return Input{Policies: compile(b, nps...), Namespaces: ns, Pods: pods, Local: func(*policy.Pod) bool { return true }}
}

func BenchmarkRenderScale(b *testing.B) {
	in := scaleInput(b)
	var rs *Ruleset
	for b.Loop() {
		rs = Render(in)
	}
	rules, elems := 0, 0
	for _, c := range rs.Chains {
		rules += len(c.Rules)
	}
	for _, s := range rs.Sets {
		elems += len(s.Elements)
	}
	b.ReportMetric(float64(rules), "rules")
	b.ReportMetric(float64(len(rs.Sets)), "sets")
	b.ReportMetric(float64(elems), "elements")
}
