package e2e

// The cases of the upstream Kubernetes e2e network policy suite (k8s.io/kubernetes v1.37.2,
// test/e2e/network/netpol/network_policy.go), each with the upstream test's name, its policies and its
// expected reachability, written afresh for this world. A matrix starts all allowed; the npExpects list the
// cells that differ, later ones winning. Upstream probes TCP port 80 unless the case says otherwise; it runs
// some cases on a subset of the pods, here every case probes the whole world.

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// npCase is one upstream test.
type npCase struct {
	Name  string
	SCTP  bool // probes SCTP: skipped, this kernel has no SCTP
	Steps []npStep
}

const (
	opIn    = metav1.LabelSelectorOpIn
	opNotIn = metav1.LabelSelectorOpNotIn
	pTCP    = corev1.ProtocolTCP
	pUDP    = corev1.ProtocolUDP
	pSCTP   = corev1.ProtocolSCTP
)

var podA = map[string]string{"pod": "a"}

// one is a case of one step.
func one(name string, do func(*npWorld), probes ...npProbe) npCase {
	return npCase{Name: name, Steps: []npStep{{do, probes}}}
}

func npCases() []npCase {
	denyIn := func(name string, sel map[string]string) *networkingv1.NetworkPolicy { return pol(name, sel, ingress()) }
	denyAllX := []npExpect{deny("x", "*"), deny("*", "x")}
	intoA := func(allowed ...string) []npExpect {
		ex := []npExpect{deny("*", "x/a")}
		for _, a := range allowed {
			ex = append(ex, allow(a, "x/a"))
		}
		return ex
	}
	return []npCase{
		one("should support a 'default-deny-ingress' policy", create("x", denyIn("deny-ingress", nil)),
			tcp(80, deny("*", "x")), udp(80, deny("*", "x"))),
		one("should support a 'default-deny-all' policy", create("x", pol("deny-all", nil, ingress(), egress())),
			tcp(80, denyAllX...), udp(81, denyAllX...)),
		one("should enforce policy to allow traffic from pods within server namespace based on PodSelector",
			create("x", pol("x-a-allows-x-b", podA, ingress(from(peers(podPeer(ml("pod=b"))))))),
			tcp(80, intoA("x/b")...)),
		one("should enforce policy to allow ingress traffic for a target",
			create("x", denyIn("deny-ingress", nil), pol("allow-all-to-a", podA, ingress(from(nil)))),
			tcp(80, deny("*", "x"), allow("*", "x/a"))),
		one("should enforce policy to allow ingress traffic from pods in all namespaces",
			create("x", pol("allow-from-all-ns", podA, ingress(from(peers(nsPeer(ml(""))))))),
			tcp(80)),
		one("should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector",
			create("x", pol("allow-from-y", podA, ingress(from(peers(nsPeer(ml("ns=y"))))))),
			tcp(80, intoA("y")...)),
		one("should enforce policy based on PodSelector with MatchExpressions",
			create("x", pol("pod-in-b", podA, ingress(from(peers(podPeer(me("pod", opIn, "b"))))))),
			tcp(80, intoA("x/b")...)),
		one("should enforce policy based on NamespaceSelector with MatchExpressions",
			create("x", pol("ns-in-y", podA, ingress(from(peers(nsPeer(me("ns", opIn, "y"))))))),
			tcp(80, intoA("y")...)),
		one("should enforce policy based on PodSelector or NamespaceSelector",
			create("x", pol("ns-y-or-not-a", podA, ingress(from(peers(nsPeer(me("ns", opIn, "y")), podPeer(me("pod", opNotIn, "a"))))))),
			tcp(80, intoA("y", "x/b", "x/c")...)),
		one("should enforce policy based on PodSelector and NamespaceSelector",
			create("x", pol("not-x-and-b", podA, ingress(from(peers(bothPeer(me("ns", opNotIn, "x"), ml("pod=b"))))))),
			tcp(80, intoA("y/b", "z/b")...)),
		one("should enforce policy based on Multiple PodSelectors and NamespaceSelectors",
			create("x", pol("not-x-and-b-or-c", podA, ingress(from(peers(bothPeer(me("ns", opNotIn, "x"), me("pod", opIn, "b", "c"))))))),
			tcp(80, intoA("y/b", "y/c", "z/b", "z/c")...)),
		one("should enforce policy based on any PodSelectors",
			create("x", pol("b-or-c", podA, ingress(from(peers(podPeer(ml("pod=b")), podPeer(ml("pod=c"))))))),
			tcp(80, intoA("x/b", "x/c")...)),
		one("should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector",
			create("x", pol("y-a", podA, ingress(from(peers(bothPeer(ml("ns=y"), ml("pod=a"))))))),
			tcp(80, intoA("y/a")...)),
		one("should enforce policy based on Ports",
			create("x", pol("y-on-81", podA, ingress(from(peers(nsPeer(ml("ns=y"))), port(81))))),
			tcp(81, intoA("y")...), tcp(80, deny("*", "x/a"))),
		{Name: "should enforce multiple, stacked policies with overlapping podSelectors", Steps: []npStep{
			{create("x", pol("y-on-81", podA, ingress(from(peers(nsPeer(ml("ns=y"))), port(81))))),
				[]npProbe{tcp(81, intoA("y")...), tcp(80, deny("*", "x/a"))}},
			{create("x", pol("y-on-80", podA, ingress(from(peers(nsPeer(ml("ns=y"))), port(80))))),
				[]npProbe{tcp(81, intoA("y")...), tcp(80, intoA("y")...)}},
		}},
		one("should support allow-all policy", create("x", pol("allow-all", nil, ingress(from(nil)))), tcp(80), tcp(81)),
		one("should allow ingress access on one named port",
			create("x", pol("named-81", nil, ingress(from(nil, named("serve-81-tcp"))))),
			tcp(81), tcp(80, deny("*", "x"))),
		one("should allow ingress access from namespace on one named port",
			create("x", pol("y-named-80", nil, ingress(from(peers(nsPeer(ml("ns=y"))), named("serve-80-tcp"))))),
			tcp(80, deny("*", "x"), allow("y", "x")), tcp(81, deny("*", "x"))),
		one("should allow egress access on one named port",
			create("x", pol("egress-named-80", nil, egress(to(nil, named("serve-80-tcp"))))),
			tcp(80), tcp(81, deny("x", "*"))),
		{Name: "should enforce updated policy", Steps: []npStep{
			{create("x", pol("named", nil, ingress(from(nil, named("serve-81-tcp"))))), []npProbe{tcp(81), tcp(80, deny("*", "x"))}},
			{update("x", pol("named", nil, ingress(from(nil, named("serve-80-tcp"))))), []npProbe{tcp(80), tcp(81, deny("*", "x"))}},
		}},
		{Name: "should allow ingress access from updated namespace", Steps: []npStep{
			{create("x", pol("from-ns2-updated", podA, ingress(from(peers(nsPeer(ml("ns2=updated"))))))), []npProbe{tcp(80, intoA()...)}},
			{func(w *npWorld) { w.setNSLabels("y", map[string]string{"ns2": "updated"}) }, []npProbe{tcp(80, intoA("y")...)}},
		}},
		{Name: "should allow ingress access from updated pod", Steps: []npStep{
			{create("x", pol("from-pod2-updated", podA, ingress(from(peers(podPeer(ml("pod2=updated"))))))), []npProbe{tcp(80, intoA()...)}},
			{func(w *npWorld) { w.setPodLabels("x/b", map[string]string{"pod": "b", "pod2": "updated"}) }, []npProbe{tcp(80, intoA("x/b")...)}},
		}},
		one("should deny ingress from pods on other namespaces",
			create("x", pol("same-ns-only", nil, ingress(from(peers(podPeer(ml(""))))))),
			tcp(80, deny("*", "x"), allow("x", "x"))),
		{Name: "should deny ingress access to updated pod", Steps: []npStep{
			{create("x", pol("deny-isolated", map[string]string{"target": "isolated"}, ingress())), []npProbe{tcp(80)}},
			{func(w *npWorld) { w.setPodLabels("x/a", map[string]string{"pod": "a", "target": "isolated"}) }, []npProbe{tcp(80, deny("*", "x/a"))}},
		}},
		{Name: "should deny egress from pods based on PodSelector", Steps: []npStep{
			{create("x", pol("deny-egress-a", podA, egress())), []npProbe{tcp(80, deny("x/a", "*"))}},
		}},
		one("should deny egress from all pods in a namespace", create("x", pol("deny-egress", nil, egress())), tcp(80, deny("x", "*"))),
		one("should work with Ingress, Egress specified together",
			create("x", pol("in-b-out-80", podA, ingress(from(peers(podPeer(ml("pod=b"))))), egress(to(nil, port(80))))),
			tcp(80, intoA("x/b")...), tcp(81, append(intoA("x/b"), deny("x/a", "*"))...)),
		one("should support denying of egress traffic on the client side (even if the server explicitly allows this traffic)",
			func(w *npWorld) {
				w.createPolicies("x", pol("a-to-y-a", podA, egress(to(peers(bothPeer(ml("ns=y"), ml("pod=a")))))))
				w.createPolicies("y", pol("b-from-x-a", map[string]string{"pod": "b"}, ingress(from(peers(bothPeer(ml("ns=x"), ml("pod=a")))))))
			},
			tcp(80, deny("x/a", "*"), allow("x/a", "y/a"), deny("*", "y/b"))),
		one("should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector",
			create("x", pol("a-to-y-a", podA, egress(to(peers(bothPeer(ml("ns=y"), ml("pod=a"))))))),
			tcp(80, deny("x/a", "*"), allow("x/a", "y/a"))),
		one("should enforce ingress policy allowing any port traffic to a server on a specific protocol",
			create("x", pol("tcp-only", podA, ingress(from(nil, protoOnly(pTCP))))),
			tcp(80), udp(80, deny("*", "x/a"))),
		{Name: "should enforce multiple ingress policies with ingress allow-all policy taking precedence", Steps: []npStep{
			{create("x", pol("only-80", nil, ingress(from(nil, port(80))))), []npProbe{tcp(81, deny("*", "x"))}},
			{create("x", pol("allow-all", nil, ingress(from(nil)))), []npProbe{tcp(81)}},
		}},
		{Name: "should enforce multiple egress policies with egress allow-all policy taking precedence", Steps: []npStep{
			{create("x", pol("only-80", nil, egress(to(nil, port(80))))), []npProbe{tcp(81, deny("x", "*"))}},
			{create("x", pol("allow-all", nil, egress(to(nil)))), []npProbe{tcp(81)}},
		}},
		{Name: "should stop enforcing policies after they are deleted", Steps: []npStep{
			{create("x", pol("deny-all", nil, ingress(), egress())), []npProbe{tcp(80, denyAllX...)}},
			{deleteAll, []npProbe{tcp(80)}},
		}},
		one("should allow egress access to server in CIDR block",
			func(w *npWorld) {
				w.createPolicies("x", pol("a-to-y-b-cidr", podA, egress(to(peers(cidr(w.byName["y/b"].ip+"/32"))))))
			},
			tcp(80, deny("x/a", "*"), allow("x/a", "y/b"))),
		one("should enforce except clause while egress access to server in CIDR block",
			func(w *npWorld) {
				w.createPolicies("x", pol("a-except-x-b", podA, egress(to(peers(cidr("10.0.0.0/8", w.byName["x/b"].ip+"/32"))))))
			},
			tcp(80, deny("x/a", "x/b"))),
		{Name: "should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed", Steps: []npStep{
			{func(w *npWorld) {
				w.createPolicies("x", pol("a-except-x-b", podA, egress(to(peers(cidr("10.0.0.0/8", w.byName["x/b"].ip+"/32"))))))
			}, []npProbe{tcp(80, deny("x/a", "x/b"))}},
			// Upstream replaces the policy with one allowing x/b alone; a second policy overlapping the first's
			// exception is the union: x/a reaches everything again.
			{func(w *npWorld) {
				w.createPolicies("x", pol("a-to-x-b", podA, egress(to(peers(cidr(w.byName["x/b"].ip+"/32"))))))
			}, []npProbe{tcp(80)}},
			{func(w *npWorld) {
				update("x", pol("a-except-x-b", podA, egress(to(peers(cidr(w.byName["x/b"].ip+"/32"))))))(w)
			}, []npProbe{tcp(80, deny("x/a", "*"), allow("x/a", "x/b"))}},
		}},
		{Name: "should enforce policies to check ingress and egress policies can be controlled independently based on PodSelector", Steps: []npStep{
			{create("x", pol("egress-all-a", podA, egress(to(nil)))), []npProbe{tcp(80)}},
			{create("x", denyIn("deny-ingress-a", podA)), []npProbe{tcp(80, deny("*", "x/a"))}},
		}},
		one("should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the plugin doesn't support SCTP",
			create("x", denyIn("deny-ingress", nil), pol("sctp-81", podA, ingress(from(nil, portOf(81, pSCTP))))),
			tcp(81, deny("*", "x"))),
		one("should properly isolate pods that are selected by a policy allowing SCTP, even if the plugin doesn't support SCTP",
			create("x", pol("sctp-80", podA, ingress(from(nil, portOf(80, pSCTP))))),
			tcp(81, deny("*", "x/a"))),
		one("should not allow access by TCP when a policy specifies only UDP",
			create("x", pol("udp-81", podA, ingress(from(nil, portOf(81, pUDP))))),
			tcp(81, deny("*", "x/a")), udp(81)),
		one("should enforce policy to allow traffic based on NamespaceSelector with MatchLabels using default ns label",
			create("x", pol("metadata-name-y", podA, ingress(from(peers(nsPeer(ml("kubernetes.io/metadata.name=y"))))))),
			tcp(80, intoA("y")...)),
		one("should enforce policy based on NamespaceSelector with MatchExpressions using default ns label",
			create("x", pol("metadata-name-in-y", podA, ingress(from(peers(nsPeer(me("kubernetes.io/metadata.name", opIn, "y"))))))),
			tcp(80, intoA("y")...)),
		one("should enforce policy based on Ports with EndPort (80-81 from y)",
			create("x", pol("y-80-81", nil, ingress(from(peers(nsPeer(ml("ns=y"))), rangeOf(80, 81))))),
			tcp(80, deny("*", "x"), allow("y", "x")), tcp(81, deny("*", "x"), allow("y", "x"))),
		one("should enforce policy based on Ports with EndPort (81-90: 80 stays denied)",
			create("x", pol("81-90", nil, egress(to(nil, rangeOf(81, 90))))),
			tcp(81), tcp(80, deny("x", "*"))),
		one("policyTypes defaulting: no policyTypes and no rules is Ingress only",
			create("x", pol("default-types", podA)),
			tcp(80, deny("*", "x/a"))),
		one("policyTypes defaulting: no policyTypes with egress rules is Ingress and Egress",
			create("x", pol("default-types-egress", podA, rawRules(nil, []networkingv1.NetworkPolicyEgressRule{to(nil, port(81))}))),
			tcp(80, deny("*", "x/a"), deny("x/a", "*")), tcp(81, deny("*", "x/a"))),
		one("UDP: should support a 'default-deny-ingress' policy", create("x", denyIn("deny-ingress", nil)),
			udp(80, deny("*", "x"))),
		one("UDP: should enforce policy based on Ports",
			create("x", pol("y-on-81-udp", podA, ingress(from(peers(nsPeer(ml("ns=y"))), portOf(81, pUDP))))),
			udp(81, intoA("y")...), udp(80, deny("*", "x/a"))),
		one("UDP: should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector",
			create("x", pol("y-a-udp", podA, ingress(from(peers(bothPeer(ml("ns=y"), ml("pod=a"))))))),
			udp(80, intoA("y/a")...)),
		{Name: "SCTP: should support a 'default-deny-ingress' policy", SCTP: true},
		{Name: "SCTP: should enforce policy based on Ports", SCTP: true},
		{Name: "SCTP: should enforce policy to allow traffic only from a pod in a different namespace based on PodSelector and NamespaceSelector", SCTP: true},
	}
}
