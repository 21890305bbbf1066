package policy

import (
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	cnp "sigs.k8s.io/network-policy-api/apis/v1beta1"
)

func nsSel(ns string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}}
}

func tcpPort(n int32) []cnp.ClusterNetworkPolicyProtocol {
	return []cnp.ClusterNetworkPolicyProtocol{{TCP: &cnp.ClusterNetworkPolicyProtocolTCP{DestinationPort: &cnp.Port{Number: n}}}}
}

func ingressCNP(name string, tier cnp.Tier, prio int32, subject string, rules ...cnp.ClusterNetworkPolicyIngressRule) *cnp.ClusterNetworkPolicy {
	c := &cnp.ClusterNetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: cnp.ClusterNetworkPolicySpec{Tier: tier, Priority: prio, Subject: cnp.ClusterNetworkPolicySubject{Namespaces: nsSel(subject)}}}
	c.Spec.Ingress = rules
	return c
}

func fromNS(action cnp.ClusterNetworkPolicyRuleAction, ns string, port int32) cnp.ClusterNetworkPolicyIngressRule {
	r := cnp.ClusterNetworkPolicyIngressRule{Action: action, From: []cnp.ClusterNetworkPolicyIngressPeer{{Namespaces: nsSel(ns)}}}
	if port != 0 {
		r.Protocols = tcpPort(port)
	}
	return r
}

// The tiers decide in order: an Admin Accept or Deny is final (over a NetworkPolicy), a Pass hands on to the
// NetworkPolicies, which decide for the pods they select, and the Baseline tier decides only for the others.
func TestClusterTiers(t *testing.T) {
	w := newWorld()
	denyAllY := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "y", Name: "deny-all"},
		Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}}
	np, err := Compile(denyAllY)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		cluster []*cnp.ClusterNetworkPolicy
		nps     []*Policy
		src     string
		want    bool
		tier    string
	}{
		{"no policy", nil, nil, "x/a", true, ""},
		{"admin deny", []*cnp.ClusterNetworkPolicy{ingressCNP("d", cnp.AdminTier, 10, "y", fromNS(cnp.ClusterNetworkPolicyRuleActionDeny, "x", 80))}, nil, "x/a", false, "Admin"},
		{"admin deny, other port", []*cnp.ClusterNetworkPolicy{ingressCNP("d", cnp.AdminTier, 10, "y", fromNS(cnp.ClusterNetworkPolicyRuleActionDeny, "x", 81))}, nil, "x/a", true, ""},
		{"admin accept over a deny-all NetworkPolicy", []*cnp.ClusterNetworkPolicy{ingressCNP("a", cnp.AdminTier, 10, "y", fromNS(cnp.ClusterNetworkPolicyRuleActionAccept, "x", 0))}, []*Policy{np}, "x/a", true, "Admin"},
		{"admin pass to a deny-all NetworkPolicy", []*cnp.ClusterNetworkPolicy{ingressCNP("p", cnp.AdminTier, 10, "y", fromNS(cnp.ClusterNetworkPolicyRuleActionPass, "x", 0)),
			ingressCNP("later", cnp.AdminTier, 20, "y", fromNS(cnp.ClusterNetworkPolicyRuleActionAccept, "x", 0))}, []*Policy{np}, "x/a", false, "NetworkPolicy"},
		{"lower priority first", []*cnp.ClusterNetworkPolicy{ingressCNP("deny", cnp.AdminTier, 20, "y", fromNS(cnp.ClusterNetworkPolicyRuleActionDeny, "x", 0)),
			ingressCNP("accept", cnp.AdminTier, 5, "y", fromNS(cnp.ClusterNetworkPolicyRuleActionAccept, "x", 0))}, nil, "x/a", true, "Admin"},
		{"rule order within a policy", []*cnp.ClusterNetworkPolicy{ingressCNP("two", cnp.AdminTier, 5, "y",
			fromNS(cnp.ClusterNetworkPolicyRuleActionDeny, "x", 80), fromNS(cnp.ClusterNetworkPolicyRuleActionAccept, "x", 0))}, nil, "x/a", false, "Admin"},
		{"baseline deny, no NetworkPolicy", []*cnp.ClusterNetworkPolicy{ingressCNP("b", cnp.BaselineTier, 1, "y", fromNS(cnp.ClusterNetworkPolicyRuleActionDeny, "x", 0))}, nil, "x/a", false, "Baseline"},
		{"baseline deny overridden by a NetworkPolicy allowing x", []*cnp.ClusterNetworkPolicy{ingressCNP("b", cnp.BaselineTier, 1, "y", fromNS(cnp.ClusterNetworkPolicyRuleActionDeny, "x", 0))},
			[]*Policy{mustCompile(t, allowFromX())}, "x/a", true, "NetworkPolicy"},
		{"baseline, other namespace's source", []*cnp.ClusterNetworkPolicy{ingressCNP("b", cnp.BaselineTier, 1, "y", fromNS(cnp.ClusterNetworkPolicyRuleActionDeny, "x", 0))}, nil, "z/a", true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var cps []*ClusterPolicy
			for _, c := range tc.cluster {
				cp, err := CompileCluster(c)
				if err != nil {
					t.Fatal(err)
				}
				cps = append(cps, cp)
			}
			SortCluster(cps)
			s, d := w.pod(tc.src), w.pod("y/a")
			v := EvaluateTiers(cps, tc.nps, w.namespaces, Conn{Src: Endpoint{s, s.IPs[0]}, Dst: Endpoint{d, d.IPs[0]}, Protocol: corev1.ProtocolTCP, Port: 80})
			if v.Allowed() != tc.want || v.Ingress.Tier() != tc.tier {
				t.Errorf("%s -> y/a: allowed %v decided by %q, want %v by %q (%+v)", tc.src, v.Allowed(), v.Ingress.Tier(), tc.want, tc.tier, v.Ingress)
			}
		})
	}
}

func mustCompile(t *testing.T, np *networkingv1.NetworkPolicy) *Policy {
	t.Helper()
	p, err := Compile(np)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func allowFromX() *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "y", Name: "from-x"},
		Spec: networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: nsSel("x")}}}}}}
}

// An egress networks peer matches by address; a named port matches the destination pod's container port of
// that name in the connection's protocol.
func TestClusterEgressNetworksAndNamedPort(t *testing.T) {
	w := newWorld()
	c := &cnp.ClusterNetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "e"}, Spec: cnp.ClusterNetworkPolicySpec{Tier: cnp.AdminTier,
		Subject: cnp.ClusterNetworkPolicySubject{Namespaces: nsSel("x")},
		Egress: []cnp.ClusterNetworkPolicyEgressRule{
			{Action: cnp.ClusterNetworkPolicyRuleActionDeny, To: []cnp.ClusterNetworkPolicyEgressPeer{{Networks: []cnp.CIDR{"192.0.2.0/24"}}}},
			{Action: cnp.ClusterNetworkPolicyRuleActionDeny, To: []cnp.ClusterNetworkPolicyEgressPeer{{Namespaces: nsSel("z")}},
				Protocols: []cnp.ClusterNetworkPolicyProtocol{{DestinationNamedPort: "serve-81-udp"}}},
		}}}
	cp, err := CompileCluster(c)
	if err != nil {
		t.Fatal(err)
	}
	a, z := w.pod("x/a"), w.pod("z/b")
	for _, tc := range []struct {
		dst   Endpoint
		proto corev1.Protocol
		port  int32
		want  bool
	}{
		{Endpoint{IP: netip.MustParseAddr("192.0.2.7")}, corev1.ProtocolTCP, 443, false},
		{Endpoint{IP: netip.MustParseAddr("198.51.100.7")}, corev1.ProtocolTCP, 443, true},
		{Endpoint{z, z.IPs[0]}, corev1.ProtocolUDP, 81, false},
		{Endpoint{z, z.IPs[0]}, corev1.ProtocolTCP, 81, true}, // serve-81-udp is UDP
		{Endpoint{z, z.IPs[0]}, corev1.ProtocolUDP, 80, true},
	} {
		v := EvaluateTiers([]*ClusterPolicy{cp}, nil, w.namespaces, Conn{Src: Endpoint{a, a.IPs[0]}, Dst: tc.dst, Protocol: tc.proto, Port: tc.port})
		if v.Allowed() != tc.want {
			t.Errorf("x/a -> %v %s/%d: allowed %v, want %v", tc.dst.IP, tc.proto, tc.port, v.Allowed(), tc.want)
		}
	}
}

// Invalid objects are refused naming the field and what was expected.
func TestCompileClusterErrors(t *testing.T) {
	ok := func() *cnp.ClusterNetworkPolicy {
		return ingressCNP("bad", cnp.AdminTier, 1, "y", fromNS(cnp.ClusterNetworkPolicyRuleActionDeny, "x", 80))
	}
	for _, tc := range []struct {
		name, want string
		edit       func(*cnp.ClusterNetworkPolicy)
	}{
		{"tier", `spec.tier: "Middle"`, func(c *cnp.ClusterNetworkPolicy) { c.Spec.Tier = "Middle" }},
		{"priority", "spec.priority: 1001: expected 0..1000", func(c *cnp.ClusterNetworkPolicy) { c.Spec.Priority = 1001 }},
		{"negative priority", "spec.priority: -1", func(c *cnp.ClusterNetworkPolicy) { c.Spec.Priority = -1 }},
		{"subject empty", "spec.subject: empty", func(c *cnp.ClusterNetworkPolicy) { c.Spec.Subject = cnp.ClusterNetworkPolicySubject{} }},
		{"action", `spec.ingress[0].action: "Allow"`, func(c *cnp.ClusterNetworkPolicy) { c.Spec.Ingress[0].Action = "Allow" }},
		{"no peers", "spec.ingress[0].from: empty", func(c *cnp.ClusterNetworkPolicy) { c.Spec.Ingress[0].From = nil }},
		{"port", "spec.ingress[0].protocols[0].tcp.destinationPort.number: 70000", func(c *cnp.ClusterNetworkPolicy) { c.Spec.Ingress[0].Protocols = tcpPort(70000) }},
		{"range", "destinationPort.range: 90-80", func(c *cnp.ClusterNetworkPolicy) {
			c.Spec.Ingress[0].Protocols = []cnp.ClusterNetworkPolicyProtocol{{UDP: &cnp.ClusterNetworkPolicyProtocolUDP{DestinationPort: &cnp.Port{Range: &cnp.PortRange{Start: 90, End: 80}}}}}
		}},
		{"two protocols", "protocols[0]: expected exactly one", func(c *cnp.ClusterNetworkPolicy) {
			c.Spec.Ingress[0].Protocols = []cnp.ClusterNetworkPolicyProtocol{{TCP: &cnp.ClusterNetworkPolicyProtocolTCP{}, DestinationNamedPort: "http"}}
		}},
		{"network", `spec.egress[0].to[0].networks[0]: "10.0.0.0/33"`, func(c *cnp.ClusterNetworkPolicy) {
			c.Spec.Egress = []cnp.ClusterNetworkPolicyEgressRule{{Action: "Deny", To: []cnp.ClusterNetworkPolicyEgressPeer{{Networks: []cnp.CIDR{"10.0.0.0/33"}}}}}
		}},
	} {
		c := ok()
		tc.edit(c)
		if _, err := CompileCluster(c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}
