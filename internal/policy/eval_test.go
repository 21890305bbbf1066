package policy

import (
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The world of the upstream netpol e2e suite: namespaces x, y, z labelled ns=<name>, pods a, b, c in each
// labelled pod=<name>, every pod serving named ports serve-80-tcp, serve-81-tcp, serve-80-udp, serve-81-udp.
type world struct {
	pods []*Pod
	ns   map[string]labels.Set
}

func newWorld() *world {
	w := &world{ns: map[string]labels.Set{}}
	for i, n := range []string{"x", "y", "z"} {
		w.ns[n] = labels.Set{"ns": n, "kubernetes.io/metadata.name": n}
		for j, p := range []string{"a", "b", "c"} {
			w.pods = append(w.pods, &Pod{Namespace: n, Name: p, Labels: map[string]string{"pod": p},
				IPs: []netip.Addr{netip.AddrFrom4([4]byte{10, 0, byte(i), byte(j + 1)})},
				Ports: []ContainerPort{{"serve-80-tcp", corev1.ProtocolTCP, 80}, {"serve-81-tcp", corev1.ProtocolTCP, 81},
					{"serve-80-udp", corev1.ProtocolUDP, 80}, {"serve-81-udp", corev1.ProtocolUDP, 81}}})
		}
	}
	return w
}

func (w *world) namespaces(n string) (labels.Set, bool) { l, ok := w.ns[n]; return l, ok }

func (w *world) pod(ref string) *Pod {
	for _, p := range w.pods {
		if p.Ref() == ref {
			return p
		}
	}
	panic(ref)
}

// denied lists, sorted, the "src->dst" pairs of the world's pods the policies deny at port/proto.
func (w *world) denied(t *testing.T, nps []*networkingv1.NetworkPolicy, proto corev1.Protocol, port int32) string {
	t.Helper()
	var ps []*Policy
	for _, np := range nps {
		p, err := Compile(np)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	var out []string
	for _, s := range w.pods {
		for _, d := range w.pods {
			v := Evaluate(ps, w.namespaces, Conn{Src: Endpoint{s, s.IPs[0]}, Dst: Endpoint{d, d.IPs[0]}, Protocol: proto, Port: port})
			if !v.Allowed() {
				out = append(out, s.Ref()+"->"+d.Ref())
			}
		}
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// pairs expands "x/* -> x/a" style patterns (a * stands for a, b and c, or x, y and z) into the sorted pairs,
// leaving out a pod's pairs with itself, which are always allowed.
func pairs(patterns ...string) string {
	expand := func(s string) []string {
		ns, pod, _ := strings.Cut(s, "/")
		var out []string
		for _, n := range []string{"x", "y", "z"} {
			for _, p := range []string{"a", "b", "c"} {
				if (ns == "*" || ns == n) && (pod == "*" || pod == p) {
					out = append(out, n+"/"+p)
				}
			}
		}
		return out
	}
	set := map[string]bool{}
	for _, pat := range patterns {
		from, to, _ := strings.Cut(pat, "->")
		for _, f := range expand(strings.TrimSpace(from)) {
			for _, d := range expand(strings.TrimSpace(to)) {
				if f != d {
					set[f+"->"+d] = true
				}
			}
		}
	}
	var out []string
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func minus(all, allowed string) string {
	a, keep := strings.Fields(all), map[string]bool{}
	for _, s := range strings.Fields(allowed) {
		keep[s] = true
	}
	a = slices.DeleteFunc(a, func(s string) bool { return keep[s] })
	return strings.Join(a, " ")
}

func np(ns, name string, spec networkingv1.NetworkPolicySpec) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
}

func sel(kv ...string) *metav1.LabelSelector {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return &metav1.LabelSelector{MatchLabels: m}
}

func tcp(port int) networkingv1.NetworkPolicyPort {
	p, pr := intstr.FromInt32(int32(port)), corev1.ProtocolTCP
	return networkingv1.NetworkPolicyPort{Protocol: &pr, Port: &p}
}

func named(name string, proto corev1.Protocol) networkingv1.NetworkPolicyPort {
	p := intstr.FromString(name)
	return networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &p}
}

var (
	ingressOnly = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	egressOnly  = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
	both        = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
)

func TestEvaluateTruthTables(t *testing.T) {
	w := newWorld()
	cidr := func(c string, except ...string) networkingv1.NetworkPolicyPeer {
		return networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: c, Except: except}}
	}
	end81 := int32(81)
	rangePort := tcp(80)
	rangePort.EndPort = &end81
	udp := corev1.ProtocolUDP
	cases := []struct {
		name   string
		nps    []*networkingv1.NetworkPolicy
		proto  corev1.Protocol
		port   int32
		denied string
	}{
		{name: "no policies", port: 80},
		{name: "default deny ingress", port: 80, nps: []*networkingv1.NetworkPolicy{
			np("x", "deny", networkingv1.NetworkPolicySpec{PolicyTypes: ingressOnly})}, denied: pairs("*/* -> x/*")},
		{name: "policyTypes absent: ingress only, even with no rules", port: 80, nps: []*networkingv1.NetworkPolicy{
			np("x", "deny", networkingv1.NetworkPolicySpec{})}, denied: pairs("*/* -> x/*")},
		{name: "policyTypes absent with egress rules: both", port: 80, nps: []*networkingv1.NetworkPolicy{
			np("x", "p", networkingv1.NetworkPolicySpec{PodSelector: *sel("pod", "a"),
				Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("pod", "b")}}}}})},
			denied: pairs("*/* -> x/a", "x/a -> x/c", "x/a -> y/*", "x/a -> z/*")},
		{name: "default deny egress", port: 80, nps: []*networkingv1.NetworkPolicy{
			np("x", "deny", networkingv1.NetworkPolicySpec{PolicyTypes: egressOnly})}, denied: pairs("x/* -> */*")},
		{name: "allow all ingress: an empty rule", port: 80, nps: []*networkingv1.NetworkPolicy{
			np("x", "deny", networkingv1.NetworkPolicySpec{PolicyTypes: ingressOnly}),
			np("x", "all", networkingv1.NetworkPolicySpec{PolicyTypes: ingressOnly, Ingress: []networkingv1.NetworkPolicyIngressRule{{}}})}},
		{name: "podSelector peer: the policy's namespace only", port: 80, nps: []*networkingv1.NetworkPolicy{
			np("x", "p", networkingv1.NetworkPolicySpec{PodSelector: *sel("pod", "a"), PolicyTypes: ingressOnly,
				Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("pod", "b")}}}}})},
			denied: minus(pairs("*/* -> x/a"), pairs("x/b -> x/a"))},
		{name: "empty podSelector peer: every pod of the policy's namespace", port: 80, nps: []*networkingv1.NetworkPolicy{
			np("x", "p", networkingv1.NetworkPolicySpec{PodSelector: *sel("pod", "a"), PolicyTypes: ingressOnly,
				Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: sel()}}}}})},
			denied: pairs("y/* -> x/a", "z/* -> x/a")},
		{name: "empty namespaceSelector peer: every pod of every namespace", port: 80, nps: []*networkingv1.NetworkPolicy{
			np("x", "p", networkingv1.NetworkPolicySpec{PodSelector: *sel("pod", "a"), PolicyTypes: ingressOnly,
				Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel()}}}}})}},
		{name: "namespaceSelector peer", port: 80, nps: []*networkingv1.NetworkPolicy{
			np("x", "p", networkingv1.NetworkPolicySpec{PodSelector: *sel("pod", "a"), PolicyTypes: ingressOnly,
				Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel("ns", "y")}}}}})},
			denied: pairs("x/* -> x/a", "z/* -> x/a")},
		{name: "both selectors in one peer: AND", port: 80, nps: []*networkingv1.NetworkPolicy{
			np("x", "p", networkingv1.NetworkPolicySpec{PodSelector: *sel("pod", "a"), PolicyTypes: ingressOnly,
				Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{
					{NamespaceSelector: sel("ns", "y"), PodSelector: sel("pod", "b")}}}}})},
			denied: minus(pairs("*/* -> x/a"), pairs("y/b -> x/a"))},
		{name: "two peers: OR", port: 80, nps: []*networkingv1.NetworkPolicy{
			np("x", "p", networkingv1.NetworkPolicySpec{PodSelector: *sel("pod", "a"), PolicyTypes: ingressOnly,
				Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{
					{NamespaceSelector: sel("ns", "y")}, {PodSelector: sel("pod", "b")}}}}})},
			denied: pairs("x/c -> x/a", "z/* -> x/a")},
		{name: "matchExpressions NotIn", port: 80, nps: []*networkingv1.NetworkPolicy{
			np("x", "p", networkingv1.NetworkPolicySpec{PolicyTypes: ingressOnly,
				Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{
					MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "ns", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"y"}}}}}}}}})},
			denied: pairs("y/* -> x/*")},
		{name: "ingress on port 80: allowed at 80", port: 80, nps: []*networkingv1.NetworkPolicy{
			np("x", "p", networkingv1.NetworkPolicySpec{PolicyTypes: ingressOnly,
				Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{tcp(80)}}}})}},
		{name: "ingress on port 80: denied at 81", port: 81, nps: []*networkingv1.NetworkPolicy{
			np("x", "p", networkingv1.NetworkPolicySpec{PolicyTypes: ingressOnly,
				Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{tcp(80)}}}})},
			denied: pairs("*/* -> x/*")},
		{name: "ingress on TCP port 80: UDP 80 denied", proto: corev1.ProtocolUDP, port: 80, nps: []*networkingv1.NetworkPolicy{
			np("x", "p", networkingv1.NetworkPolicySpec{PolicyTypes: ingressOnly,
				Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{tcp(80)}}}})},
			denied: pairs("*/* -> x/*")},
		{name: "protocol absent is TCP", port: 80, nps: []*networkingv1.NetworkPolicy{
			np("x", "p", networkingv1.NetworkPolicySpec{PolicyTypes: ingressOnly,
				Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: tcp(80).Port}}}}})}},
		{name: "a protocol without a port: every port", proto: corev1.ProtocolUDP, port: 81, nps: []*networkingv1.NetworkPolicy{
			np("x", "p", networkingv1.NetworkPolicySpec{PolicyTypes: ingressOnly,
				Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp}}}}})}},
		{name: "named port resolved on the destination", port: 81, nps: []*networkingv1.NetworkPolicy{
			np("x", "p", networkingv1.NetworkPolicySpec{PolicyTypes: ingressOnly,
				Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{named("serve-81-tcp", corev1.ProtocolTCP)}}}})}},
		{name: "named port: another number denied", port: 80, nps: []*networkingv1.NetworkPolicy{
			np("x", "p", networkingv1.NetworkPolicySpec{PolicyTypes: ingressOnly,
				Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{named("serve-81-tcp", corev1.ProtocolTCP)}}}})},
			denied: pairs("*/* -> x/*")},
		{name: "named port of the other protocol denied", proto: corev1.ProtocolUDP, port: 81, nps: []*networkingv1.NetworkPolicy{
			np("x", "p", networkingv1.NetworkPolicySpec{PolicyTypes: ingressOnly,
				Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{named("serve-81-tcp", corev1.ProtocolUDP)}}}})},
			denied: pairs("*/* -> x/*")},
		{name: "egress to a named port resolves on the destination pod", port: 81, nps: []*networkingv1.NetworkPolicy{
			np("x", "p", networkingv1.NetworkPolicySpec{PolicyTypes: egressOnly,
				Egress: []networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{named("serve-80-tcp", corev1.ProtocolTCP)}}}})},
			denied: pairs("x/* -> */*")},
		{name: "endPort range: 81 in 80..81", port: 81, nps: []*networkingv1.NetworkPolicy{
			np("x", "p", networkingv1.NetworkPolicySpec{PolicyTypes: ingressOnly,
				Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{rangePort}}}})}},
		{name: "endPort range: 82 outside 80..81", port: 82, nps: []*networkingv1.NetworkPolicy{
			np("x", "p", networkingv1.NetworkPolicySpec{PolicyTypes: ingressOnly,
				Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{rangePort}}}})},
			denied: pairs("*/* -> x/*")},
		{name: "peers and ports: both must match", port: 81, nps: []*networkingv1.NetworkPolicy{
			np("x", "p", networkingv1.NetworkPolicySpec{PodSelector: *sel("pod", "a"), PolicyTypes: ingressOnly,
				Ingress: []networkingv1.NetworkPolicyIngressRule{
					{From: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("pod", "b")}}, Ports: []networkingv1.NetworkPolicyPort{tcp(80)}},
					{From: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("pod", "c")}}, Ports: []networkingv1.NetworkPolicyPort{tcp(81)}}}})},
			denied: minus(pairs("*/* -> x/a"), pairs("x/c -> x/a"))},
		{name: "egress ipBlock with except (pod addresses)", port: 80, nps: []*networkingv1.NetworkPolicy{
			np("x", "p", networkingv1.NetworkPolicySpec{PodSelector: *sel("pod", "a"), PolicyTypes: egressOnly,
				Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{cidr("10.0.1.0/24", "10.0.1.2/32")}}}})},
			denied: pairs("x/a -> x/*", "x/a -> z/*", "x/a -> y/b")},
		{name: "ingress ipBlock", port: 80, nps: []*networkingv1.NetworkPolicy{
			np("x", "p", networkingv1.NetworkPolicySpec{PodSelector: *sel("pod", "a"), PolicyTypes: ingressOnly,
				Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{cidr("10.0.2.0/30")}}}})},
			denied: minus(pairs("*/* -> x/a"), pairs("z/a -> x/a", "z/b -> x/a", "z/c -> x/a"))},
		{name: "egress and ingress both needed", port: 80, nps: []*networkingv1.NetworkPolicy{
			np("x", "in", networkingv1.NetworkPolicySpec{PodSelector: *sel("pod", "a"), PolicyTypes: ingressOnly,
				Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel("ns", "y")}}}}}),
			np("y", "out", networkingv1.NetworkPolicySpec{PodSelector: *sel("pod", "b"), PolicyTypes: egressOnly,
				Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel("ns", "z")}}}}})},
			denied: pairs("x/* -> x/a", "z/* -> x/a", "y/b -> x/*", "y/b -> y/*")},
		{name: "policies add up", port: 80, nps: []*networkingv1.NetworkPolicy{
			np("x", "one", networkingv1.NetworkPolicySpec{PodSelector: *sel("pod", "a"), PolicyTypes: ingressOnly,
				Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("pod", "b")}}}}}),
			np("x", "two", networkingv1.NetworkPolicySpec{PodSelector: *sel("pod", "a"), PolicyTypes: ingressOnly,
				Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("pod", "c")}}}}})},
			denied: pairs("y/* -> x/a", "z/* -> x/a")},
		{name: "ingress-only policy leaves egress open", port: 80, nps: []*networkingv1.NetworkPolicy{
			np("x", "p", networkingv1.NetworkPolicySpec{PolicyTypes: ingressOnly, Egress: []networkingv1.NetworkPolicyEgressRule{{}}})},
			denied: pairs("*/* -> x/*")},
		{name: "both types, no rules: isolated both ways", port: 80, nps: []*networkingv1.NetworkPolicy{
			np("y", "p", networkingv1.NetworkPolicySpec{PodSelector: *sel("pod", "c"), PolicyTypes: both})},
			denied: pairs("*/* -> y/c", "y/c -> */*")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.proto == "" {
				c.proto = corev1.ProtocolTCP
			}
			if got := w.denied(t, c.nps, c.proto, c.port); got != c.denied {
				t.Errorf("denied at %d/%s:\n got  %s\n want %s", c.port, c.proto, got, c.denied)
			}
		})
	}
}

func TestEvaluateNotSubjects(t *testing.T) {
	w := newWorld()
	deny, err := Compile(np("x", "deny", networkingv1.NetworkPolicySpec{PolicyTypes: both}))
	if err != nil {
		t.Fatal(err)
	}
	fromB, err := Compile(np("y", "fromb", networkingv1.NetworkPolicySpec{PolicyTypes: ingressOnly,
		Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel(), PodSelector: sel("pod", "b")}}}}}))
	if err != nil {
		t.Fatal(err)
	}
	ps := []*Policy{deny, fromB}
	host := &Pod{Namespace: "x", Name: "h", Labels: map[string]string{"pod": "b"}, HostNetwork: true, IPs: []netip.Addr{netip.MustParseAddr("192.168.0.1")}}
	done := &Pod{Namespace: "x", Name: "d", Labels: map[string]string{"pod": "b"}, Terminated: true, IPs: []netip.Addr{netip.MustParseAddr("10.0.0.9")}}
	if deny.Selects(host) || deny.Selects(done) || !deny.Selects(w.pod("x/a")) {
		t.Error("host-network and terminated pods must not be selected, others must")
	}
	// A host-network pod labelled pod=b is not matched by the selector: y/a admits it only as an address.
	v := Evaluate(ps, w.namespaces, Conn{Src: Endpoint{host, host.IPs[0]}, Dst: Endpoint{w.pod("y/a"), w.pod("y/a").IPs[0]}, Protocol: corev1.ProtocolTCP, Port: 80})
	if v.Allowed() || v.Egress.Applies {
		t.Errorf("host-network pod b -> y/a: %+v, want denied by y's ingress only", v)
	}
	v = Evaluate(ps, w.namespaces, Conn{Src: Endpoint{w.pod("z/b"), w.pod("z/b").IPs[0]}, Dst: Endpoint{w.pod("y/a"), w.pod("y/a").IPs[0]}, Protocol: corev1.ProtocolTCP, Port: 80})
	if !v.Allowed() || !slices.Equal(v.Ingress.Selecting, []string{"y/fromb"}) || !slices.Equal(v.Ingress.Admitting, []RuleRef{{"y/fromb", 0}}) {
		t.Errorf("z/b -> y/a: %+v, want admitted by y/fromb rule 0", v)
	}
	// An address outside any pod: only ipBlocks match; the pod's isolation still decides.
	out := Endpoint{IP: netip.MustParseAddr("8.8.8.8")}
	if v := Evaluate(ps, w.namespaces, Conn{Src: Endpoint{w.pod("x/a"), w.pod("x/a").IPs[0]}, Dst: out, Protocol: corev1.ProtocolTCP, Port: 53}); v.Allowed() || v.Ingress.Applies {
		t.Errorf("x/a -> outside: %+v, want denied by x's egress", v)
	}
	// A pod in a namespace the evaluator does not know: no namespace selector matches it.
	stray := &Pod{Namespace: "gone", Name: "s", Labels: map[string]string{"pod": "b"}, IPs: []netip.Addr{netip.MustParseAddr("10.9.9.9")}}
	if v := Evaluate(ps, w.namespaces, Conn{Src: Endpoint{stray, stray.IPs[0]}, Dst: Endpoint{w.pod("y/a"), w.pod("y/a").IPs[0]}, Protocol: corev1.ProtocolTCP, Port: 80}); v.Allowed() {
		t.Errorf("pod of an unknown namespace -> y/a: %+v, want denied", v)
	}
	// A pod to itself: always allowed, even isolated both ways.
	a := w.pod("x/a")
	if v := Evaluate(ps, w.namespaces, Conn{Src: Endpoint{a, a.IPs[0]}, Dst: Endpoint{a, a.IPs[0]}, Protocol: corev1.ProtocolTCP, Port: 80}); !v.Allowed() || !v.Loopback {
		t.Errorf("x/a -> x/a: %+v, want loopback allowed", v)
	}
}

func TestCompileErrors(t *testing.T) {
	five, p0, big := int32(5), intstr.FromInt32(0), intstr.FromInt32(70000)
	sctp, icmp := corev1.ProtocolSCTP, corev1.Protocol("ICMP")
	p80, named := intstr.FromInt32(80), intstr.FromString("http")
	cases := []struct {
		spec networkingv1.NetworkPolicySpec
		want string
	}{
		{networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"a b": "c"}}}, "NetworkPolicy ns/p: spec.podSelector: "},
		{networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{"Sideways"}}, `spec.policyTypes: "Sideways": expected "Ingress" or "Egress"`},
		{networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{}, {From: []networkingv1.NetworkPolicyPeer{{}}}}}, "spec.ingress[1].from[0]: empty peer: expected podSelector, namespaceSelector or ipBlock"},
		{networkingv1.NetworkPolicySpec{Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/33"}}}}}}, `spec.egress[0].to[0].ipBlock.cidr: "10.0.0.0/33": expected a CIDR`},
		{networkingv1.NetworkPolicySpec{Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/16", Except: []string{"10.1.0.0/24"}}}}}}}, "spec.egress[0].to[0].ipBlock.except[0]: 10.1.0.0/24: expected a CIDR inside 10.0.0.0/16"},
		{networkingv1.NetworkPolicySpec{Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/16"}, PodSelector: sel()}}}}}, "spec.egress[0].to[0]: ipBlock with a podSelector or namespaceSelector"},
		{networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: &p0}}}}}, "spec.ingress[0].ports[0].port: 0: expected 1..65535"},
		{networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: &big}}}}}, "spec.ingress[0].ports[0].port: 70000: expected 1..65535"},
		{networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: &p80, EndPort: &five}}}}}, "spec.ingress[0].ports[0].endPort: 5: expected 80..65535"},
		{networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: &named, EndPort: &five}}}}}, `spec.ingress[0].ports[0].endPort: set with the named port "http"`},
		{networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{EndPort: &five}}}}}, "spec.ingress[0].ports[0].endPort: set without port"},
		{networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Protocol: &icmp}}}}}, `spec.ingress[0].ports[0].protocol: "ICMP": expected TCP, UDP or SCTP`},
	}
	for i, c := range cases {
		_, err := Compile(np("ns", "p", c.spec))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("case %d: %v, want %q", i, err, c.want)
		}
	}
	if p, err := Compile(np("ns", "p", networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Protocol: &sctp}}}}})); err != nil || p.IngressRules[0].Ports[0].Protocol != corev1.ProtocolSCTP {
		t.Errorf("SCTP compiles (the engine says it cannot enforce it): %v", err)
	}
}
