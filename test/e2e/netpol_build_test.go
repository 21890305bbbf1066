package e2e

// Small builders for the NetworkPolicy objects of the cases, and the steps that create, update and delete them.

import (
	"context"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// specOpt shapes a policy's spec.
type specOpt func(*networkingv1.NetworkPolicySpec)

// pol is a policy selecting the pods with labels sel (nil or empty: every pod of its namespace). Without
// ingress/egress options its policyTypes stay empty, for the API server to default.
func pol(name string, sel map[string]string, opts ...specOpt) *networkingv1.NetworkPolicy {
	p := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: sel}}}
	for _, o := range opts {
		o(&p.Spec)
	}
	return p
}

// ingress adds policyType Ingress with these rules (none: deny all ingress).
func ingress(rules ...networkingv1.NetworkPolicyIngressRule) specOpt {
	return func(s *networkingv1.NetworkPolicySpec) {
		s.PolicyTypes = append(s.PolicyTypes, networkingv1.PolicyTypeIngress)
		s.Ingress = append(s.Ingress, rules...)
	}
}

// egress adds policyType Egress with these rules (none: deny all egress).
func egress(rules ...networkingv1.NetworkPolicyEgressRule) specOpt {
	return func(s *networkingv1.NetworkPolicySpec) {
		s.PolicyTypes = append(s.PolicyTypes, networkingv1.PolicyTypeEgress)
		s.Egress = append(s.Egress, rules...)
	}
}

// rawRules sets rules without touching policyTypes (the defaulting cases).
func rawRules(in []networkingv1.NetworkPolicyIngressRule, eg []networkingv1.NetworkPolicyEgressRule) specOpt {
	return func(s *networkingv1.NetworkPolicySpec) { s.Ingress, s.Egress = in, eg }
}

// from is an ingress rule; to an egress rule.
func from(peers []networkingv1.NetworkPolicyPeer, ports ...networkingv1.NetworkPolicyPort) networkingv1.NetworkPolicyIngressRule {
	return networkingv1.NetworkPolicyIngressRule{From: peers, Ports: ports}
}

func to(peers []networkingv1.NetworkPolicyPeer, ports ...networkingv1.NetworkPolicyPort) networkingv1.NetworkPolicyEgressRule {
	return networkingv1.NetworkPolicyEgressRule{To: peers, Ports: ports}
}

// peers lists peers.
func peers(p ...networkingv1.NetworkPolicyPeer) []networkingv1.NetworkPolicyPeer { return p }

// ml is a selector of matchLabels "k=v,k2=v2" ("" selects everything).
func ml(kv string) *metav1.LabelSelector {
	s := &metav1.LabelSelector{MatchLabels: map[string]string{}}
	for _, pair := range strings.Split(kv, ",") {
		if k, v, ok := strings.Cut(pair, "="); ok {
			s.MatchLabels[k] = v
		}
	}
	return s
}

// me is a selector of one matchExpression.
func me(key string, op metav1.LabelSelectorOperator, values ...string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: key, Operator: op, Values: values}}}
}

// podPeer, nsPeer and bothPeer are peers by selector; cidr one by ipBlock.
func podPeer(s *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{PodSelector: s}
}

func nsPeer(s *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: s}
}

func bothPeer(ns, pod *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: ns, PodSelector: pod}
}

func cidr(block string, except ...string) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: block, Except: except}}
}

// port is a numbered port (protocol left to the API server's default, TCP); named a named one; portOf with a
// protocol; rangeOf a numbered range; protoOnly every port of a protocol.
func port(n int) networkingv1.NetworkPolicyPort {
	v := intstr.FromInt32(int32(n))
	return networkingv1.NetworkPolicyPort{Port: &v}
}

func named(name string) networkingv1.NetworkPolicyPort {
	v := intstr.FromString(name)
	return networkingv1.NetworkPolicyPort{Port: &v}
}

func portOf(n int, proto corev1.Protocol) networkingv1.NetworkPolicyPort {
	p := port(n)
	p.Protocol = &proto
	return p
}

func rangeOf(n, end int) networkingv1.NetworkPolicyPort {
	p := port(n)
	e := int32(end)
	p.EndPort = &e
	return p
}

func protoOnly(proto corev1.Protocol) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: &proto}
}

// npStep changes the cluster, then checks its matrices.
type npStep struct {
	Do     func(w *npWorld)
	Probes []npProbe
}

// create is a step action that creates policies in a namespace.
func create(ns string, ps ...*networkingv1.NetworkPolicy) func(*npWorld) {
	return func(w *npWorld) { w.createPolicies(ns, ps...) }
}

func (w *npWorld) createPolicies(ns string, ps ...*networkingv1.NetworkPolicy) {
	w.t.Helper()
	for _, p := range ps {
		if _, err := w.kube.NetworkingV1().NetworkPolicies(ns).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
			w.t.Fatalf("create policy %s/%s: %v", ns, p.Name, err)
		}
	}
}

// update replaces a policy's spec.
func update(ns string, p *networkingv1.NetworkPolicy) func(*npWorld) {
	return func(w *npWorld) {
		w.t.Helper()
		ctx := context.Background()
		old, err := w.kube.NetworkingV1().NetworkPolicies(ns).Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil {
			w.t.Fatal(err)
		}
		old.Spec = p.Spec
		if _, err := w.kube.NetworkingV1().NetworkPolicies(ns).Update(ctx, old, metav1.UpdateOptions{}); err != nil {
			w.t.Fatalf("update policy %s/%s: %v", ns, p.Name, err)
		}
	}
}

// deleteAll deletes every policy of the world.
func deleteAll(w *npWorld) {
	w.t.Helper()
	for _, ns := range npNamespaces {
		if err := w.kube.NetworkingV1().NetworkPolicies(ns).DeleteCollection(context.Background(), metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
			w.t.Fatal(err)
		}
	}
}
