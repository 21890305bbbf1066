package main

// The objects of the scale measurement, as pure functions of the counts: namespaces, pods (addresses in
// status.podIP, no network of their own) and a realistic mix of NetworkPolicies, the same on every run.

import (
	"fmt"
	"math/rand/v2"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// probeNS is the namespace the latency probes change: its generated policies select pods by app only (no
// namespace-wide selection), so a pod labelled flip=on is isolated by the flip policy alone.
const probeNS = "pb-00"

// Ports of the probes: each change carries a port no other rule has, so its arrival is recognised.
const (
	flipPort   = 29999
	createPort = 30000 // + change number
	updatePort = 40000 // + change number
)

var (
	apps  = []string{"web", "api", "db", "cache", "queue", "auth", "search", "billing", "mail", "report"}
	tiers = []string{"frontend", "backend", "data"}
	teams = []string{"red", "blue", "green", "gold", "gray"}
)

func nsName(i int) string { return fmt.Sprintf("pb-%02d", i) }

// scaleNamespaces are the namespaces, labelled by team and environment.
func scaleNamespaces(n int) []*corev1.Namespace {
	var out []*corev1.Namespace
	for i := 0; i < n; i++ {
		env := "prod"
		if i%3 == 2 {
			env = "staging"
		}
		out = append(out, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: nsName(i),
			Labels: map[string]string{"team": teams[i%len(teams)], "env": env}}})
	}
	return out
}

// podIP is scale pod i's address: 10.245.0.0/16, outside the node's pod CIDR (nothing is routed to it).
func podIP(i int) string { return fmt.Sprintf("10.245.%d.%d", 1+i/250, 1+i%250) }

// idleFrom is the first of probeNS's pods that are app=idle, which no policy selects (the label probes flip
// them): its last fifth.
func idleFrom(perNS int) int { return perNS - max(1, perNS/5) }

// scalePod is pod i of namespace ns (of perNS) on node: labelled app, tier and version, one named port.
func scalePod(ns, node string, i, perNS int) *corev1.Pod {
	l := map[string]string{"app": apps[i%len(apps)], "tier": tiers[i%len(tiers)], "version": fmt.Sprintf("v%d", 1+i%2)}
	if ns == probeNS && i >= idleFrom(perNS) {
		l["app"] = "idle"
	}
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%04d", i), Namespace: ns, Labels: l},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/pause",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}}}}}
}

// running is the status weftd reads: phase Running and the address.
func running(ip string) corev1.PodStatus {
	return corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}
}

func sel(kv ...string) *metav1.LabelSelector {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return &metav1.LabelSelector{MatchLabels: m}
}

func tcp(port int32, end int32) networkingv1.NetworkPolicyPort {
	p := corev1.ProtocolTCP
	np := networkingv1.NetworkPolicyPort{Protocol: &p, Port: ptr(intstr.FromInt32(port))}
	if end > 0 {
		np.EndPort = &end
	}
	return np
}

func named(name string) networkingv1.NetworkPolicyPort {
	p := corev1.ProtocolTCP
	return networkingv1.NetworkPolicyPort{Protocol: &p, Port: ptr(intstr.FromString(name))}
}

func udp(port int32) networkingv1.NetworkPolicyPort {
	p := corev1.ProtocolUDP
	return networkingv1.NetworkPolicyPort{Protocol: &p, Port: ptr(intstr.FromInt32(port))}
}

func ptr[T any](v T) *T { return &v }

var (
	ingressOnly = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	egressOnly  = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
	both        = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
)

// scalePolicies is the mix over namespaces (seeded, so every run has the same): app-to-app ingress on ports,
// ingress from other teams' namespaces (with and without a pod selector, port ranges), egress to named ports and
// DNS, ipBlocks with exceptions, and, outside probeNS, namespace-wide default deny and allow-same-namespace.
func scalePolicies(n, namespaces int) []*networkingv1.NetworkPolicy {
	r := rand.New(rand.NewPCG(12, 34))
	var out []*networkingv1.NetworkPolicy
	for i := 0; i < n; i++ {
		nsi := i % namespaces
		ns := nsName(nsi)
		app, peer := apps[r.IntN(len(apps))], apps[r.IntN(len(apps))]
		spec := networkingv1.NetworkPolicySpec{PodSelector: *sel("app", app), PolicyTypes: ingressOnly}
		kind := r.IntN(20)
		if ns == probeNS && kind >= 18 {
			kind = r.IntN(18)
		}
		switch {
		case kind < 8: // app -> app on one or two ports
			ports := []networkingv1.NetworkPolicyPort{tcp(8080, 0)}
			if kind%2 == 0 {
				ports = append(ports, tcp(9090+int32(r.IntN(10)), 0))
			}
			spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("app", peer)}}, Ports: ports}}
		case kind < 12: // from another team's namespaces, optionally one tier of them, a port range
			from := networkingv1.NetworkPolicyPeer{NamespaceSelector: sel("team", teams[r.IntN(len(teams))])}
			if kind%2 == 0 {
				from.PodSelector = sel("tier", tiers[r.IntN(len(tiers))])
			}
			spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{from},
				Ports: []networkingv1.NetworkPolicyPort{tcp(443, 0), tcp(10000, 10100)}}}
		case kind < 15: // egress to a tier's named port, and DNS anywhere in the cluster
			spec.PolicyTypes = egressOnly
			spec.Egress = []networkingv1.NetworkPolicyEgressRule{
				{To: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("tier", tiers[r.IntN(len(tiers))])}}, Ports: []networkingv1.NetworkPolicyPort{named("http")}},
				{To: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}}}, Ports: []networkingv1.NetworkPolicyPort{udp(53), tcp(53, 0)}}}
		case kind < 18: // ipBlocks: from the office range but a hole, egress to the internet but the cluster
			spec.PolicyTypes = both
			a := 1 + r.IntN(200)
			spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{
				{IPBlock: &networkingv1.IPBlock{CIDR: fmt.Sprintf("172.%d.0.0/16", 16+a%16), Except: []string{fmt.Sprintf("172.%d.%d.0/24", 16+a%16, a)}}},
				{PodSelector: sel("app", peer)}}, Ports: []networkingv1.NetworkPolicyPort{tcp(8443, 0)}}}
			spec.Egress = []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{
				{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"}}}},
				Ports: []networkingv1.NetworkPolicyPort{tcp(443, 0)}}}
		case kind == 18: // default deny ingress for the namespace
			spec.PodSelector = metav1.LabelSelector{}
		default: // allow everything from the same namespace
			spec.PodSelector = metav1.LabelSelector{}
			spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}}}
		}
		out = append(out, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("np-%03d", i), Namespace: ns}, Spec: spec})
	}
	return out
}

// probePolicy is the policy a create/update/delete probe changes: app=web of probeNS admits app=api on port.
func probePolicy(name string, port int32) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: probeNS},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: *sel("app", "web"), PolicyTypes: ingressOnly,
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("app", "api")}},
				Ports: []networkingv1.NetworkPolicyPort{tcp(port, 0)}}}}}
}

// flipPolicy isolates the pods of probeNS labelled flip=on (the label probes and the new pods).
func flipPolicy() *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "flip", Namespace: probeNS},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: *sel("flip", "on"), PolicyTypes: ingressOnly,
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("app", "api")}},
				Ports: []networkingv1.NetworkPolicyPort{tcp(flipPort, 0)}}}}}
}

// datapathNS holds the two traffic pods and the policies on them.
const datapathNS = "pb-dp"

// datapathPolicy k selects the server (policed=yes) and admits, among other peers (an ipBlock that is not the
// client's, another app, another namespace's tier), the client, on the traffic ports and others.
func datapathPolicy(k int) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("dp-%03d", k), Namespace: datapathNS},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: *sel("policed", "yes"), PolicyTypes: ingressOnly,
			Ingress: []networkingv1.NetworkPolicyIngressRule{
				{From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: fmt.Sprintf("192.0.2.%d/32", k%250)}},
					{PodSelector: sel("app", apps[k%len(apps)])}}, Ports: []networkingv1.NetworkPolicyPort{tcp(8080, 0)}},
				{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel("team", teams[k%len(teams)]), PodSelector: sel("tier", tiers[k%len(tiers)])},
					{PodSelector: sel("role", "client")}}, Ports: []networkingv1.NetworkPolicyPort{tcp(5298, 0), tcp(5299, 0), tcp(int32(6000+k), 0)}}}}}
}
