package policy

// The cluster-scoped policies of sigs.k8s.io/network-policy-api (ClusterNetworkPolicy, policy.networking.k8s.io
// v1beta1, served since v0.3.0), compiled for the same evaluation as NetworkPolicy. A ClusterNetworkPolicy sits in
// one of two tiers around the namespaced policies: the Admin tier is consulted first and its Accept or Deny is
// final; a Pass skips the rest of the Admin tier; then the NetworkPolicies decide for the pods they select; for
// the others the Baseline tier decides, and with no Baseline verdict the connection is allowed. Within a tier
// policies go by priority (lower first; equal priorities by name, which the API leaves to the implementation),
// and within a policy rules go in their written order; the first rule whose peer and protocol match decides.

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	cnp "sigs.k8s.io/network-policy-api/apis/v1beta1"
)

// Tier is a ClusterNetworkPolicy's tier.
type Tier string

// The tiers a ClusterNetworkPolicy can be in.
const (
	AdminTier    Tier = "Admin"
	BaselineTier Tier = "Baseline"
)

// Action is a cluster rule's action.
type Action string

// The actions of a cluster rule.
const (
	Accept Action = "Accept"
	Deny   Action = "Deny"
	Pass   Action = "Pass"
)

// ClusterPolicy is a ClusterNetworkPolicy compiled for evaluation.
type ClusterPolicy struct {
	Name     string
	Tier     Tier
	Priority int32
	// Subject: the pods of the namespaces Namespaces selects, narrowed to those Pods selects when Pods is set.
	Namespaces   labels.Selector
	Pods         labels.Selector // nil: every pod of those namespaces
	IngressRules []ClusterRule
	EgressRules  []ClusterRule
	// Unenforced lists the peers this engine cannot match (domain names): they match nothing here.
	Unenforced []string
}

// Ref names the policy as ClusterNetworkPolicy names go (cluster scoped: its name).
func (p *ClusterPolicy) Ref() string { return p.Name }

// ClusterRule is one rule of a ClusterNetworkPolicy: when Match matches (its peers are always explicit: a rule
// with no peers matches nothing), Action decides.
type ClusterRule struct {
	Name   string // the rule's optional name
	Action Action
	Match  Rule
}

// MaxClusterPriority is the highest (least preferred) priority the API accepts.
const MaxClusterPriority = 1000

// CompileCluster checks and compiles a ClusterNetworkPolicy. Errors name the field as the API does.
func CompileCluster(c *cnp.ClusterNetworkPolicy) (*ClusterPolicy, error) {
	where := func(field string) string { return fmt.Sprintf("ClusterNetworkPolicy %s: %s", c.Name, field) }
	p := &ClusterPolicy{Name: c.Name, Tier: Tier(c.Spec.Tier), Priority: c.Spec.Priority}
	if p.Tier != AdminTier && p.Tier != BaselineTier {
		return nil, fmt.Errorf("%s: %q: expected %q or %q", where("spec.tier"), c.Spec.Tier, AdminTier, BaselineTier)
	}
	if p.Priority < 0 || p.Priority > MaxClusterPriority {
		return nil, fmt.Errorf("%s: %d: expected 0..%d", where("spec.priority"), p.Priority, MaxClusterPriority)
	}
	var err error
	if p.Namespaces, p.Pods, err = compileNamespacedPods(c.Spec.Subject.Namespaces, c.Spec.Subject.Pods); err != nil {
		return nil, fmt.Errorf("%s%s", where("spec.subject"), err.Error())
	}
	for i, r := range c.Spec.Ingress {
		field := fmt.Sprintf("spec.ingress[%d]", i)
		rule := ClusterRule{Name: r.Name, Action: Action(r.Action)}
		for j, pe := range r.From {
			peer, err := compileClusterPeer(pe.Namespaces, pe.Pods)
			if err != nil {
				return nil, fmt.Errorf("%s.from[%d]%s", where(field), j, err.Error())
			}
			rule.Match.Peers = append(rule.Match.Peers, peer)
		}
		if err := p.finishRule(&rule, r.Protocols, len(r.From), field, "from"); err != nil {
			return nil, fmt.Errorf("%s%s", where(field), err.Error())
		}
		p.IngressRules = append(p.IngressRules, rule)
	}
	for i, r := range c.Spec.Egress {
		field := fmt.Sprintf("spec.egress[%d]", i)
		rule := ClusterRule{Name: r.Name, Action: Action(r.Action)}
		for j, pe := range r.To {
			peers, err := p.compileEgressPeer(pe, fmt.Sprintf("%s.to[%d]", field, j))
			if err != nil {
				return nil, fmt.Errorf("%s.to[%d]%s", where(field), j, err.Error())
			}
			rule.Match.Peers = append(rule.Match.Peers, peers...)
		}
		if err := p.finishRule(&rule, r.Protocols, len(r.To), field, "to"); err != nil {
			return nil, fmt.Errorf("%s%s", where(field), err.Error())
		}
		p.EgressRules = append(p.EgressRules, rule)
	}
	return p, nil
}

// finishRule checks the action and the peer count and compiles the protocols; its errors start with the sub-field.
func (p *ClusterPolicy) finishRule(r *ClusterRule, protos []cnp.ClusterNetworkPolicyProtocol, peers int, field, peersField string) error {
	switch r.Action {
	case Accept, Deny, Pass:
	default:
		return fmt.Errorf(".action: %q: expected %q, %q or %q", r.Action, Accept, Deny, Pass)
	}
	if peers == 0 {
		return fmt.Errorf(".%s: empty: expected at least one peer", peersField)
	}
	for i, pr := range protos {
		po, err := compileClusterProtocol(pr)
		if err != nil {
			return fmt.Errorf(".protocols[%d]%s", i, err.Error())
		}
		r.Match.Ports = append(r.Match.Ports, po)
	}
	return nil
}

// compileNamespacedPods compiles a subject or peer given as exactly one of namespaces or pods.
func compileNamespacedPods(nsSel *metav1.LabelSelector, pods *cnp.NamespacedPod) (ns, pod labels.Selector, err error) {
	switch {
	case nsSel != nil && pods != nil:
		return nil, nil, fmt.Errorf(": both namespaces and pods: expected exactly one")
	case nsSel != nil:
		if ns, err = metav1.LabelSelectorAsSelector(nsSel); err != nil {
			return nil, nil, fmt.Errorf(".namespaces: %w", err)
		}
		return ns, nil, nil
	case pods != nil:
		if ns, err = metav1.LabelSelectorAsSelector(&pods.NamespaceSelector); err != nil {
			return nil, nil, fmt.Errorf(".pods.namespaceSelector: %w", err)
		}
		if pod, err = metav1.LabelSelectorAsSelector(&pods.PodSelector); err != nil {
			return nil, nil, fmt.Errorf(".pods.podSelector: %w", err)
		}
		return ns, pod, nil
	}
	return nil, nil, fmt.Errorf(": empty: expected namespaces or pods")
}

// compileClusterPeer compiles a namespaces or pods peer: a Peer whose Namespaces is always set.
func compileClusterPeer(nsSel *metav1.LabelSelector, pods *cnp.NamespacedPod) (Peer, error) {
	ns, pod, err := compileNamespacedPods(nsSel, pods)
	if err != nil {
		return Peer{}, err
	}
	return Peer{Namespaces: ns, Pods: pod}, nil
}

// compileEgressPeer compiles an egress peer: namespaces, pods, networks (one IPBlock peer per CIDR), nodes or
// domain names (experimental: recorded as unenforced, matching nothing).
func (p *ClusterPolicy) compileEgressPeer(pe cnp.ClusterNetworkPolicyEgressPeer, field string) ([]Peer, error) {
	set := 0
	for _, b := range []bool{pe.Namespaces != nil, pe.Pods != nil, pe.Nodes != nil, len(pe.Networks) > 0, len(pe.DomainNames) > 0} {
		if b {
			set++
		}
	}
	if set != 1 {
		return nil, fmt.Errorf(": %d of namespaces, pods, nodes, networks, domainNames set: expected exactly one", set)
	}
	switch {
	case len(pe.Networks) > 0:
		var out []Peer
		for i, s := range pe.Networks {
			cidr, err := netip.ParsePrefix(string(s))
			if err != nil {
				return nil, fmt.Errorf(".networks[%d]: %q: expected a CIDR such as 10.0.0.0/8", i, s)
			}
			out = append(out, Peer{IPBlock: &IPBlock{CIDR: cidr.Masked()}})
		}
		return out, nil
	case pe.Nodes != nil:
		p.Unenforced = append(p.Unenforced, fmt.Sprintf("%s.nodes: node peers are not enforced (they match nothing)", field))
		return nil, nil
	case len(pe.DomainNames) > 0:
		p.Unenforced = append(p.Unenforced, fmt.Sprintf("%s.domainNames: domain name peers are not enforced (they match nothing)", field))
		return nil, nil
	}
	peer, err := compileClusterPeer(pe.Namespaces, pe.Pods)
	if err != nil {
		return nil, err
	}
	return []Peer{peer}, nil
}

// compileClusterProtocol compiles one protocols entry: a protocol with a port, a range or every port, or a named
// port (Protocol "": the protocol of the container port of that name).
func compileClusterProtocol(pr cnp.ClusterNetworkPolicyProtocol) (Port, error) {
	type proto struct {
		name  corev1.Protocol
		field string
		port  *cnp.Port
		set   bool
	}
	ps := []proto{{corev1.ProtocolTCP, "tcp", nil, pr.TCP != nil}, {corev1.ProtocolUDP, "udp", nil, pr.UDP != nil},
		{corev1.ProtocolSCTP, "sctp", nil, pr.SCTP != nil}}
	if pr.TCP != nil {
		ps[0].port = pr.TCP.DestinationPort
	}
	if pr.UDP != nil {
		ps[1].port = pr.UDP.DestinationPort
	}
	if pr.SCTP != nil {
		ps[2].port = pr.SCTP.DestinationPort
	}
	var chosen []proto
	for _, p := range ps {
		if p.set {
			chosen = append(chosen, p)
		}
	}
	named := pr.DestinationNamedPort != ""
	if n := len(chosen); named && n != 0 || !named && n != 1 {
		return Port{}, fmt.Errorf(": expected exactly one of tcp, udp, sctp, destinationNamedPort")
	}
	if named {
		return Port{Name: pr.DestinationNamedPort}, nil
	}
	c := chosen[0]
	po := Port{Protocol: c.name}
	if c.port == nil {
		return po, nil
	}
	field := "." + c.field + ".destinationPort"
	switch {
	case c.port.Range != nil && c.port.Number != 0:
		return Port{}, fmt.Errorf("%s: both number and range: expected one", field)
	case c.port.Range != nil:
		s, e := c.port.Range.Start, c.port.Range.End
		if s < 1 || s > 65535 || e < s || e > 65535 {
			return Port{}, fmt.Errorf("%s.range: %d-%d: expected 1 <= start <= end <= 65535", field, s, e)
		}
		po.Port, po.EndPort = s, e
	default:
		if c.port.Number < 1 || c.port.Number > 65535 {
			return Port{}, fmt.Errorf("%s.number: %d: expected 1..65535", field, c.port.Number)
		}
		po.Port = c.port.Number
	}
	return po, nil
}

// Selects says whether the cluster policy applies to pod (ns gives namespaces' labels).
func (p *ClusterPolicy) Selects(pod *Pod, ns Namespaces) bool {
	if !pod.Subject() {
		return false
	}
	l, ok := ns(pod.Namespace)
	if !ok || !p.Namespaces.Matches(l) {
		return false
	}
	return p.Pods == nil || p.Pods.Matches(labels.Set(pod.Labels))
}

// SortCluster orders cluster policies as they are evaluated: by tier (Admin first), priority, then name.
func SortCluster(ps []*ClusterPolicy) {
	slices.SortFunc(ps, func(a, b *ClusterPolicy) int {
		if a.Tier != b.Tier {
			if a.Tier == AdminTier {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(a.Priority, b.Priority), cmp.Compare(a.Name, b.Name))
	})
}
