package policy

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Pod is what policy evaluation needs of a pod.
type Pod struct {
	Namespace, Name string
	Labels          map[string]string
	IPs             []netip.Addr
	HostNetwork     bool
	Terminated      bool // phase Succeeded or Failed
	Ports           []ContainerPort
}

// Ref names the pod as namespace/name.
func (p *Pod) Ref() string { return p.Namespace + "/" + p.Name }

// Subject says whether policies apply to the pod and its selectors can match it: not on the host network, not
// terminated.
func (p *Pod) Subject() bool { return !p.HostNetwork && !p.Terminated }

// ContainerPort is a named port of one of the pod's containers.
type ContainerPort struct {
	Name     string
	Protocol corev1.Protocol
	Port     int32
}

// NamedPort resolves name for protocol on the pod: the number, or 0 when no container port has that name and
// protocol.
func (p *Pod) NamedPort(name string, proto corev1.Protocol) int32 {
	for _, c := range p.Ports {
		if c.Name == name && c.Protocol == proto {
			return c.Port
		}
	}
	return 0
}

// Namespaces gives a namespace's labels (nil when it is unknown: no namespace selector matches it).
type Namespaces func(name string) (labels.Set, bool)

// Endpoint is one end of a connection: a pod at one of its addresses, or an address outside any pod (Pod nil).
type Endpoint struct {
	Pod *Pod
	IP  netip.Addr
}

// Conn is a connection from Src to Dst at Dst's Port over Protocol.
type Conn struct {
	Src, Dst Endpoint
	Protocol corev1.Protocol
	Port     int32
}

// RuleRef is a rule of a policy: its index in the policy's ingress or egress list.
type RuleRef struct {
	Policy string // namespace/name
	Rule   int
}

// Direction is the verdict of one direction (the source's egress or the destination's ingress).
type Direction struct {
	// Applies is false when the end is not a pod subject to policy (outside any pod, host network,
	// terminated): the direction admits everything.
	Applies bool
	// Admin is the Admin-tier cluster rule that matched first (nil: none). Its Accept or Deny decides; a Pass
	// hands the decision on.
	Admin *ClusterRuleRef
	// Selecting are the policies that select the pod for this direction; none means the pod is not isolated.
	Selecting []string
	// Admitting are the rules that admit the connection.
	Admitting []RuleRef
	// Baseline is the Baseline-tier cluster rule that matched first, looked for only when neither the Admin tier
	// nor a NetworkPolicy decided (nil: none, the connection is allowed).
	Baseline *ClusterRuleRef
}

// ClusterRuleRef is a rule of a cluster policy and its action.
type ClusterRuleRef struct {
	Policy string
	Tier   Tier
	Rule   int
	Name   string // the rule's name, when it has one
	Action Action
}

// Tier says which tier decided the direction: "Admin", "NetworkPolicy", "Baseline", or "" (no policy: allowed).
func (d Direction) Tier() string {
	switch {
	case !d.Applies:
		return ""
	case d.Admin != nil && d.Admin.Action != Pass:
		return string(AdminTier)
	case len(d.Selecting) > 0:
		return "NetworkPolicy"
	case d.Baseline != nil && d.Baseline.Action != Pass:
		return string(BaselineTier)
	}
	return ""
}

// Allowed says whether the direction admits the connection.
func (d Direction) Allowed() bool {
	switch d.Tier() {
	case string(AdminTier):
		return d.Admin.Action == Accept
	case "NetworkPolicy":
		return len(d.Admitting) > 0
	case string(BaselineTier):
		return d.Baseline.Action == Accept
	}
	return true
}

// Verdict is a connection's evaluation.
type Verdict struct {
	Egress, Ingress Direction
	// Loopback is a pod's connection to itself, which no policy restricts (it never leaves the pod).
	Loopback bool
}

// Allowed says whether the connection is allowed: both directions admit it, or it is a pod's to itself.
func (v Verdict) Allowed() bool { return v.Loopback || v.Egress.Allowed() && v.Ingress.Allowed() }

// Selects says whether the policy applies to pod.
func (p *Policy) Selects(pod *Pod) bool {
	return pod.Subject() && pod.Namespace == p.Namespace && p.Pods.Matches(labels.Set(pod.Labels))
}

// MatchesPod says whether the peer of a rule of a policy in namespace policyNS matches pod (selectors only: an
// ipBlock peer matches addresses, see MatchesIP).
func (pe *Peer) MatchesPod(pod *Pod, policyNS string, ns Namespaces) bool {
	if pe.IPBlock != nil || pod == nil || !pod.Subject() {
		return false
	}
	if pe.Namespaces == nil {
		if pod.Namespace != policyNS {
			return false
		}
	} else {
		l, ok := ns(pod.Namespace)
		if !ok || !pe.Namespaces.Matches(l) {
			return false
		}
	}
	return pe.Pods == nil || pe.Pods.Matches(labels.Set(pod.Labels))
}

// MatchesIP says whether the peer is an ipBlock holding ip.
func (pe *Peer) MatchesIP(ip netip.Addr) bool { return pe.IPBlock != nil && pe.IPBlock.Contains(ip) }

// matches says whether the peer matches the endpoint.
func (pe *Peer) matches(e Endpoint, policyNS string, ns Namespaces) bool {
	return pe.MatchesIP(e.IP) || pe.MatchesPod(e.Pod, policyNS, ns)
}

// Matches says whether the port admits a connection to dst (its named ports resolve on dst's pod; an endpoint
// outside any pod has none) at port over proto.
func (po *Port) Matches(proto corev1.Protocol, port int32, dst *Pod) bool {
	if po.Protocol != "" && po.Protocol != proto { // "": a cluster rule's named port, any protocol
		return false
	}
	switch {
	case po.Name != "":
		return dst != nil && dst.Subject() && port != 0 && dst.NamedPort(po.Name, proto) == port
	case po.Port == 0:
		return true
	case po.EndPort != 0:
		return port >= po.Port && port <= po.EndPort
	default:
		return port == po.Port
	}
}

// MatchesPeer says whether a peer of the rule (of a policy in namespace policyNS) matches the connection's other
// end, or the rule has no peers.
func (r *Rule) MatchesPeer(other Endpoint, policyNS string, ns Namespaces) bool {
	if len(r.Peers) == 0 {
		return true
	}
	for i := range r.Peers {
		if r.Peers[i].matches(other, policyNS, ns) {
			return true
		}
	}
	return false
}

// MatchesPort says whether a port of the rule matches the connection's destination port, or the rule has none.
func (r *Rule) MatchesPort(c Conn) bool {
	if len(r.Ports) == 0 {
		return true
	}
	for i := range r.Ports {
		if r.Ports[i].Matches(c.Protocol, c.Port, c.Dst.Pod) {
			return true
		}
	}
	return false
}

// admits says whether the rule admits a connection whose other end is peer.
func (r *Rule) admits(peer Endpoint, c Conn, policyNS string, ns Namespaces) bool {
	return r.MatchesPeer(peer, policyNS, ns) && r.MatchesPort(c)
}

// Evaluate decides the connection under the policies (all namespaces' compiled policies; those of other
// namespaces than the ends' are ignored).
func Evaluate(policies []*Policy, ns Namespaces, c Conn) Verdict {
	return EvaluateTiers(nil, policies, ns, c)
}

// EvaluateTiers decides the connection under the cluster policies (in SortCluster's order) and the namespaced
// policies, tier by tier (see cluster.go).
func EvaluateTiers(cluster []*ClusterPolicy, policies []*Policy, ns Namespaces, c Conn) Verdict {
	return Verdict{
		Egress:   direction(cluster, policies, ns, c, c.Src.Pod, c.Dst, true),
		Ingress:  direction(cluster, policies, ns, c, c.Dst.Pod, c.Src, false),
		Loopback: c.Src.Pod != nil && c.Src.Pod == c.Dst.Pod,
	}
}

// direction evaluates one direction at the pod end (the source for egress, the destination for ingress) against
// the other end.
func direction(cluster []*ClusterPolicy, policies []*Policy, ns Namespaces, c Conn, end *Pod, other Endpoint, egress bool) Direction {
	var d Direction
	if end == nil || !end.Subject() {
		return d
	}
	d.Applies = true
	d.Admin = firstClusterRule(cluster, AdminTier, ns, c, end, other, egress)
	for _, p := range policies {
		if egress && !p.Egress || !egress && !p.Ingress || !p.Selects(end) {
			continue
		}
		d.Selecting = append(d.Selecting, p.Ref())
		rules := p.IngressRules
		if egress {
			rules = p.EgressRules
		}
		for i := range rules {
			if rules[i].admits(other, c, p.Namespace, ns) {
				d.Admitting = append(d.Admitting, RuleRef{Policy: p.Ref(), Rule: i})
			}
		}
	}
	if (d.Admin == nil || d.Admin.Action == Pass) && len(d.Selecting) == 0 {
		d.Baseline = firstClusterRule(cluster, BaselineTier, ns, c, end, other, egress)
	}
	return d
}

// firstClusterRule is the first rule of tier's policies selecting end that matches the connection (nil: none).
func firstClusterRule(cluster []*ClusterPolicy, tier Tier, ns Namespaces, c Conn, end *Pod, other Endpoint, egress bool) *ClusterRuleRef {
	for _, p := range cluster {
		if p.Tier != tier || !p.Selects(end, ns) {
			continue
		}
		rules := p.IngressRules
		if egress {
			rules = p.EgressRules
		}
		for i := range rules {
			r := &rules[i]
			if len(r.Match.Peers) > 0 && r.Match.admits(other, c, "", ns) {
				return &ClusterRuleRef{Policy: p.Ref(), Tier: tier, Rule: i, Name: r.Name, Action: r.Action}
			}
		}
	}
	return nil
}
