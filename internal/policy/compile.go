// Package policy is the meaning of Kubernetes NetworkPolicy (networking.k8s.io/v1), as pure functions: which pods
// a policy selects and for which directions, which peers and ports its rules admit, and whether a connection
// between two endpoints is allowed, with the policies and rules that decided it. The nftables engine renders
// what this package decides, and `weft policy explain` prints it, so what is explained is what is enforced.
//
// The semantics follow the API's documentation: a pod is isolated for a direction when at least one policy of
// its namespace selects it with that policy type; an isolated pod admits a connection in that direction when
// any rule of any selecting policy admits it (rules are additive); a connection between two pods needs the
// source's egress and the destination's ingress to admit it. Rules with no peers or no ports admit all of them;
// a rule's peers are a pod selector in the policy's namespace, a namespace selector, both (the pods selected in
// the namespaces selected), or an ipBlock with exceptions, which also matches pod addresses. Ports have a
// protocol (TCP when absent), a number, a range (endPort) or a name resolved against the destination pod's
// container ports. Pods on the host network and pods that have terminated are neither selected nor matched by
// selectors (their traffic is the node's address, which only an ipBlock matches).
package policy

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Policy is a NetworkPolicy compiled for evaluation: its selectors parsed once, its policy types defaulted.
type Policy struct {
	Namespace, Name string
	Pods            labels.Selector // the pods of Namespace it applies to
	Ingress, Egress bool            // the policy types it has
	IngressRules    []Rule
	EgressRules     []Rule
}

// Ref names the policy as namespace/name.
func (p *Policy) Ref() string { return p.Namespace + "/" + p.Name }

// Rule is one ingress or egress rule: it admits a connection when a peer matches the other end (or Peers is
// empty: every peer) and a port matches the destination port (or Ports is empty: every port).
type Rule struct {
	Peers []Peer
	Ports []Port
}

// Peer is one entry of a rule's from or to list. Exactly one of the forms is set: selectors (Pods and/or
// Namespaces; a nil Namespaces means the policy's own namespace) or IPBlock.
type Peer struct {
	Pods       labels.Selector // nil: every pod of the selected namespaces
	Namespaces labels.Selector // nil: the policy's namespace only
	IPBlock    *IPBlock
}

// IPBlock is a CIDR minus its exceptions.
type IPBlock struct {
	CIDR   netip.Prefix
	Except []netip.Prefix
}

// Contains says whether ip is in the block and in none of its exceptions.
func (b *IPBlock) Contains(ip netip.Addr) bool {
	if !b.CIDR.Contains(ip) {
		return false
	}
	for _, e := range b.Except {
		if e.Contains(ip) {
			return false
		}
	}
	return true
}

// Port is one entry of a rule's ports: a protocol with every port (Port 0 and Name ""), one port, a range
// Port..EndPort, or a named port.
type Port struct {
	Protocol corev1.Protocol
	Port     int32
	EndPort  int32 // 0: Port alone
	Name     string
}

// Compile checks and compiles a NetworkPolicy. Errors name the field as the API does (spec.ingress[0].from[1]...).
func Compile(np *networkingv1.NetworkPolicy) (*Policy, error) {
	p := &Policy{Namespace: np.Namespace, Name: np.Name}
	where := func(field string) string { return fmt.Sprintf("NetworkPolicy %s/%s: %s", np.Namespace, np.Name, field) }
	var err error
	if p.Pods, err = metav1.LabelSelectorAsSelector(&np.Spec.PodSelector); err != nil {
		return nil, fmt.Errorf("%s: %w", where("spec.podSelector"), err)
	}
	p.Ingress, p.Egress, err = policyTypes(np.Spec)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where("spec.policyTypes"), err)
	}
	for i, r := range np.Spec.Ingress {
		rule, err := compileRule(r.From, r.Ports, fmt.Sprintf("spec.ingress[%d]", i), "from")
		if err != nil {
			return nil, fmt.Errorf("%s", where(err.Error()))
		}
		p.IngressRules = append(p.IngressRules, rule)
	}
	for i, r := range np.Spec.Egress {
		rule, err := compileRule(r.To, r.Ports, fmt.Sprintf("spec.egress[%d]", i), "to")
		if err != nil {
			return nil, fmt.Errorf("%s", where(err.Error()))
		}
		p.EgressRules = append(p.EgressRules, rule)
	}
	return p, nil
}

// policyTypes defaults as the API server does: Ingress always, Egress when there are egress rules.
func policyTypes(s networkingv1.NetworkPolicySpec) (ingress, egress bool, err error) {
	if len(s.PolicyTypes) == 0 {
		return true, len(s.Egress) > 0, nil
	}
	for _, t := range s.PolicyTypes {
		switch t {
		case networkingv1.PolicyTypeIngress:
			ingress = true
		case networkingv1.PolicyTypeEgress:
			egress = true
		default:
			return false, false, fmt.Errorf("%q: expected %q or %q", t, networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress)
		}
	}
	return ingress, egress, nil
}

func compileRule(peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort, field, peersField string) (Rule, error) {
	var r Rule
	for i, pe := range peers {
		cp, err := compilePeer(pe)
		if err != nil {
			return Rule{}, fmt.Errorf("%s.%s[%d]%s", field, peersField, i, err.Error())
		}
		r.Peers = append(r.Peers, cp)
	}
	for i, po := range ports {
		cp, err := compilePort(po)
		if err != nil {
			return Rule{}, fmt.Errorf("%s.ports[%d]%s", field, i, err.Error())
		}
		r.Ports = append(r.Ports, cp)
	}
	return r, nil
}

// compilePeer's errors start with the sub-field (".ipBlock.cidr: ...") so the caller can prefix the path.
func compilePeer(pe networkingv1.NetworkPolicyPeer) (Peer, error) {
	if pe.IPBlock != nil {
		if pe.PodSelector != nil || pe.NamespaceSelector != nil {
			return Peer{}, fmt.Errorf(": ipBlock with a podSelector or namespaceSelector: expected ipBlock alone")
		}
		b, err := compileIPBlock(*pe.IPBlock)
		if err != nil {
			return Peer{}, err
		}
		return Peer{IPBlock: b}, nil
	}
	if pe.PodSelector == nil && pe.NamespaceSelector == nil {
		return Peer{}, fmt.Errorf(": empty peer: expected podSelector, namespaceSelector or ipBlock")
	}
	var p Peer
	var err error
	if pe.PodSelector != nil {
		if p.Pods, err = metav1.LabelSelectorAsSelector(pe.PodSelector); err != nil {
			return Peer{}, fmt.Errorf(".podSelector: %w", err)
		}
	}
	if pe.NamespaceSelector != nil {
		if p.Namespaces, err = metav1.LabelSelectorAsSelector(pe.NamespaceSelector); err != nil {
			return Peer{}, fmt.Errorf(".namespaceSelector: %w", err)
		}
	}
	return p, nil
}

func compileIPBlock(b networkingv1.IPBlock) (*IPBlock, error) {
	cidr, err := netip.ParsePrefix(b.CIDR)
	if err != nil {
		return nil, fmt.Errorf(".ipBlock.cidr: %q: expected a CIDR such as 10.0.0.0/8", b.CIDR)
	}
	out := &IPBlock{CIDR: cidr.Masked()}
	for i, s := range b.Except {
		e, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf(".ipBlock.except[%d]: %q: expected a CIDR such as 10.0.0.0/24", i, s)
		}
		e = e.Masked()
		if e.Addr().Is4() != cidr.Addr().Is4() || e.Bits() < cidr.Bits() || !cidr.Contains(e.Addr()) {
			return nil, fmt.Errorf(".ipBlock.except[%d]: %s: expected a CIDR inside %s", i, e, out.CIDR)
		}
		out.Except = append(out.Except, e)
	}
	return out, nil
}

func compilePort(po networkingv1.NetworkPolicyPort) (Port, error) {
	p := Port{Protocol: corev1.ProtocolTCP}
	if po.Protocol != nil {
		p.Protocol = *po.Protocol
	}
	switch p.Protocol {
	case corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP:
	default:
		return Port{}, fmt.Errorf(".protocol: %q: expected TCP, UDP or SCTP", p.Protocol)
	}
	if po.Port == nil {
		if po.EndPort != nil {
			return Port{}, fmt.Errorf(".endPort: set without port: expected a numeric port with it")
		}
		return p, nil
	}
	if po.Port.Type == intstr.String {
		if po.EndPort != nil {
			return Port{}, fmt.Errorf(".endPort: set with the named port %q: expected a numeric port with it", po.Port.StrVal)
		}
		if po.Port.StrVal == "" {
			return Port{}, fmt.Errorf(".port: empty name: expected a port number or a container port's name")
		}
		p.Name = po.Port.StrVal
		return p, nil
	}
	if po.Port.IntVal < 1 || po.Port.IntVal > 65535 {
		return Port{}, fmt.Errorf(".port: %d: expected 1..65535", po.Port.IntVal)
	}
	p.Port = po.Port.IntVal
	if po.EndPort != nil {
		if *po.EndPort < p.Port || *po.EndPort > 65535 {
			return Port{}, fmt.Errorf(".endPort: %d: expected %d..65535 (at least port)", *po.EndPort, p.Port)
		}
		p.EndPort = *po.EndPort
	}
	return p, nil
}
