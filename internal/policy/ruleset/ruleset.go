// Package ruleset renders, as a pure function, what a node's nftables must hold to enforce NetworkPolicy for the
// pods it runs: one inet table whose forward chain sends a packet from an isolated local pod through that pod's
// egress chain and a packet to one through its ingress chain (verdict maps keyed by the pod's addresses), replies
// of allowed connections accepted first by conntrack. A pod chain holds one line per rule, peer and port of the
// policies that select it; the peers are sets of addresses, one per distinct selector (shared between policies and
// pods), ipBlocks are interval sets of the block minus its exceptions, and an egress rule's named port is a set of
// address-and-port pairs of the destination pods that have it. A chain ends by dropping what no rule allowed,
// counted per selecting policy. Nothing here touches the kernel: the engine diffs two Rulesets into transactions.
//
// Traffic between a pod and its own node never passes the forward hook (it is input or output), so it is never
// restricted, as Kubernetes asks; a pod's traffic to itself stays inside the pod.
package ruleset

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/weftnet/weft/internal/policy"
)

// Input is the cluster as the node sees it.
type Input struct {
	Policies   []*policy.Policy
	Cluster    []*policy.ClusterPolicy // ClusterNetworkPolicies, in policy.SortCluster's order
	Namespaces policy.Namespaces
	Pods       []*policy.Pod          // every pod of the cluster (peers)
	Local      func(*policy.Pod) bool // the pods this node runs (subjects)
	IPv6       bool                   // render the IPv6 half too
}

// Set is a named nftables set: its key type, whether it holds intervals, its elements in order.
type Set struct {
	Type     string
	Interval bool
	Comment  string
	Elements []string
}

// Chain is a regular chain's rules (each with its comment after a tab, when it has one).
type Chain struct {
	Comment string
	Rules   []Rule
}

// Rule is one rule of a chain.
type Rule struct {
	Rule, Comment string
}

// Ruleset is the table's desired content apart from its fixed base chain: sets, pod chains, the four dispatch
// maps (address to "jump"/"goto" chain) and the deny counters.
type Ruleset struct {
	Sets     map[string]*Set
	Chains   map[string]*Chain
	Maps     map[string]map[string]string // map name -> key -> verdict
	Counters map[string]Counter           // by counter name
	// Unenforced lists what could not be rendered (SCTP ports), for the engine to report.
	Unenforced []string
}

// Counter is a deny counter's policy and direction.
type Counter struct {
	Namespace, Policy string
	Direction         string // "ingress" or "egress"
}

// Comment is the counter's nftables comment.
func (c Counter) Comment() string {
	return fmt.Sprintf("%s/%s %s denied", c.Namespace, c.Policy, c.Direction)
}

// The dispatch maps, fixed.
const (
	MapEgress4  = "egress4"
	MapEgress6  = "egress6"
	MapIngress4 = "ingress4"
	MapIngress6 = "ingress6"
)

// BaseRules are the forward chain's rules, in order.
var BaseRules = []string{
	"ct state established,related accept",
	"ip saddr vmap @" + MapEgress4,
	"ip6 saddr vmap @" + MapEgress6,
	"ip daddr vmap @" + MapIngress4,
	"ip6 daddr vmap @" + MapIngress6,
}

// Render computes the ruleset for the input.
func Render(in Input) *Ruleset {
	r := &renderer{in: in, rs: &Ruleset{Sets: map[string]*Set{}, Chains: map[string]*Chain{}, Counters: map[string]Counter{},
		Maps: map[string]map[string]string{MapEgress4: {}, MapEgress6: {}, MapIngress4: {}, MapIngress6: {}}}}
	for _, p := range in.Pods {
		if !p.Subject() || in.Local == nil || !in.Local(p) {
			continue
		}
		r.pod(p, false)
		r.pod(p, true)
	}
	slices.Sort(r.rs.Unenforced)
	r.rs.Unenforced = slices.Compact(r.rs.Unenforced)
	return r.rs
}

type renderer struct {
	in Input
	rs *Ruleset
}

// pod renders the pod's chain for one direction when a policy isolates it in that direction.
func (r *renderer) pod(p *policy.Pod, egress bool) {
	var selecting []*policy.Policy
	for _, pol := range r.in.Policies {
		if (egress && pol.Egress || !egress && pol.Ingress) && pol.Selects(p) {
			selecting = append(selecting, pol)
		}
	}
	if len(selecting) == 0 {
		return
	}
	dir, verdict, m4, m6, jump := "ingress", "accept", MapIngress4, MapIngress6, "goto"
	if egress {
		dir, verdict, m4, m6, jump = "egress", "return", MapEgress4, MapEgress6, "jump"
	}
	name := chainName(dir, p)
	ch := &Chain{Comment: fmt.Sprintf("%s of %s", dir, p.Ref())}
	var counters []string
	for _, pol := range selecting {
		rules := pol.IngressRules
		if egress {
			rules = pol.EgressRules
		}
		for i := range rules {
			comment := fmt.Sprintf("%s %s[%d]", pol.Ref(), dir, i)
			for _, line := range r.rule(pol, &rules[i], p, egress) {
				ch.Rules = append(ch.Rules, Rule{Rule: line + " " + verdict, Comment: comment})
			}
		}
		c := counterName(dir, pol)
		r.rs.Counters[c] = Counter{Namespace: pol.Namespace, Policy: pol.Name, Direction: dir}
		counters = append(counters, "counter name "+c)
	}
	ch.Rules = append(ch.Rules, Rule{Rule: strings.Join(counters, " ") + " drop", Comment: "no rule allows it"})
	r.rs.Chains[name] = ch
	for _, ip := range p.IPs {
		switch {
		case ip.Is4():
			r.rs.Maps[m4][ip.String()] = jump + " " + name
		case r.in.IPv6:
			r.rs.Maps[m6][ip.String()] = jump + " " + name
		}
	}
}

// rule renders one rule of pol for the pod: the match part of each line (peer by port), without the verdict.
func (r *renderer) rule(pol *policy.Policy, rule *policy.Rule, p *policy.Pod, egress bool) []string {
	peers := []string{""} // every peer
	if len(rule.Peers) > 0 {
		peers = nil
		for i := range rule.Peers {
			peers = append(peers, r.peer(pol, &rule.Peers[i], egress)...)
		}
	}
	if len(rule.Ports) == 0 {
		return peers
	}
	var out []string
	for i := range rule.Ports {
		po := &rule.Ports[i]
		if po.Protocol == corev1.ProtocolSCTP {
			r.rs.Unenforced = append(r.rs.Unenforced, fmt.Sprintf("%s: SCTP ports (this node's kernel has no SCTP; SCTP stays denied where the policy isolates)", pol.Ref()))
			continue
		}
		if po.Name != "" && egress {
			out = append(out, r.namedEgress(pol, rule, po)...)
			continue
		}
		port := portMatch(po, p)
		if port == "" {
			continue // a named port the pod does not have: the line admits nothing
		}
		for _, peer := range peers {
			out = append(out, join(peer, port))
		}
	}
	return out
}

// peer renders a peer as the match of the other end's address: one line per family.
func (r *renderer) peer(pol *policy.Policy, pe *policy.Peer, egress bool) []string {
	field := "saddr"
	if egress {
		field = "daddr"
	}
	key, comment := selectorKey(pol, pe), selectorKey(pol, pe)
	members := func() (v4, v6 []string) {
		for _, pod := range r.in.Pods {
			if pe.MatchesPod(pod, pol.Namespace, r.in.Namespaces) {
				for _, ip := range pod.IPs {
					v4, v6 = appendFamily(v4, v6, ip, ip.String())
				}
			}
		}
		return v4, v6
	}
	interval, has4, has6 := pe.IPBlock != nil, true, r.in.IPv6
	if pe.IPBlock != nil {
		key, comment = "block "+blockKey(pe.IPBlock), "ipBlock "+blockKey(pe.IPBlock)
		has4, has6 = pe.IPBlock.CIDR.Addr().Is4(), r.in.IPv6 && pe.IPBlock.CIDR.Addr().Is6()
		members = func() (v4, v6 []string) {
			for _, pf := range pe.IPBlock.Prefixes() {
				v4, v6 = appendFamily(v4, v6, pf.Addr(), pf.String())
			}
			return v4, v6
		}
	}
	m := once(members)
	var out []string
	if has4 {
		out = append(out, fmt.Sprintf("ip %s @%s", field, r.set("peer4-", key, "ipv4_addr", interval, comment, func() []string { v4, _ := m(); return v4 })))
	}
	if has6 {
		out = append(out, fmt.Sprintf("ip6 %s @%s", field, r.set("peer6-", key, "ipv6_addr", interval, comment, func() []string { _, v6 := m(); return v6 })))
	}
	return out
}

// appendFamily appends el to v4 or v6 by a's family.
func appendFamily(v4, v6 []string, a netip.Addr, el string) ([]string, []string) {
	if a.Is4() {
		return append(v4, el), v6
	}
	return v4, append(v6, el)
}

// once memoizes a set's members: computed only for a set not rendered yet, and once for both families.
func once(f func() (v4, v6 []string)) func() (v4, v6 []string) {
	var done bool
	var a, b []string
	return func() ([]string, []string) {
		if !done {
			a, b = f()
			done = true
		}
		return a, b
	}
}

// namedEgress renders an egress rule's named port: the destination address and port as one set of the pods that
// match a peer of the rule (any pod when it has none) and have the port.
func (r *renderer) namedEgress(pol *policy.Policy, rule *policy.Rule, po *policy.Port) []string {
	proto := strings.ToLower(string(po.Protocol))
	m := once(func() (v4, v6 []string) {
		for _, pod := range r.in.Pods {
			n := pod.NamedPort(po.Name, po.Protocol)
			if !pod.Subject() || n == 0 {
				continue
			}
			for _, ip := range pod.IPs {
				if peersMatch(pol, rule, pod, ip, r.in.Namespaces) {
					v4, v6 = appendFamily(v4, v6, ip, fmt.Sprintf("%s . %d", ip, n))
				}
			}
		}
		return v4, v6
	})
	key := fmt.Sprintf("named %s/%s %s", po.Name, po.Protocol, rulePeersKey(pol, rule))
	comment := fmt.Sprintf("pods with port %s/%s", po.Name, po.Protocol)
	out := []string{fmt.Sprintf("ip daddr . %s dport @%s", proto,
		r.set("named4-", key, "ipv4_addr . inet_service", false, comment, func() []string { v4, _ := m(); return v4 }))}
	if r.in.IPv6 {
		out = append(out, fmt.Sprintf("ip6 daddr . %s dport @%s", proto,
			r.set("named6-", key, "ipv6_addr . inet_service", false, comment, func() []string { _, v6 := m(); return v6 })))
	}
	return out
}

func peersMatch(pol *policy.Policy, rule *policy.Rule, pod *policy.Pod, ip netip.Addr, ns policy.Namespaces) bool {
	if len(rule.Peers) == 0 {
		return true
	}
	for i := range rule.Peers {
		pe := &rule.Peers[i]
		if pe.MatchesIP(ip) || pe.MatchesPod(pod, pol.Namespace, ns) {
			return true
		}
	}
	return false
}

// set adds (or finds: the same key yields the same set, its members computed once) a set and returns its name.
func (r *renderer) set(prefix, key, typ string, interval bool, comment string, members func() []string) string {
	name := prefix + hash(key)
	if _, ok := r.rs.Sets[name]; !ok {
		elems := members()
		slices.Sort(elems)
		r.rs.Sets[name] = &Set{Type: typ, Interval: interval, Comment: clip(comment), Elements: slices.Compact(elems)}
	}
	return name
}

// portMatch renders a port for a line whose destination is pod (ingress: the pod itself); "" when a named port
// does not resolve on it.
func portMatch(po *policy.Port, pod *policy.Pod) string {
	proto := strings.ToLower(string(po.Protocol))
	switch {
	case po.Name != "":
		n := pod.NamedPort(po.Name, po.Protocol)
		if n == 0 {
			return ""
		}
		return fmt.Sprintf("%s dport %d", proto, n)
	case po.Port == 0:
		return "meta l4proto " + proto
	case po.EndPort != 0 && po.EndPort != po.Port:
		return fmt.Sprintf("%s dport %d-%d", proto, po.Port, po.EndPort)
	default:
		return fmt.Sprintf("%s dport %d", proto, po.Port)
	}
}

func join(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + " " + b
}

// selectorKey identifies a selector peer by what it selects: the same namespaces and pods give the same set.
func selectorKey(pol *policy.Policy, pe *policy.Peer) string {
	ns := "namespace " + pol.Namespace
	if pe.Namespaces != nil {
		ns = "namespaces {" + pe.Namespaces.String() + "}"
	}
	pods := "all pods"
	if pe.Pods != nil {
		pods = "pods {" + pe.Pods.String() + "}"
	}
	return pods + " of " + ns
}

func blockKey(b *policy.IPBlock) string {
	s := b.CIDR.String()
	for _, e := range b.Except {
		s += " except " + e.String()
	}
	return s
}

func rulePeersKey(pol *policy.Policy, rule *policy.Rule) string {
	if len(rule.Peers) == 0 {
		return "to any"
	}
	var ks []string
	for i := range rule.Peers {
		pe := &rule.Peers[i]
		if pe.IPBlock != nil {
			ks = append(ks, "block "+blockKey(pe.IPBlock))
		} else {
			ks = append(ks, selectorKey(pol, pe))
		}
	}
	slices.Sort(ks)
	return "to " + strings.Join(ks, " or ")
}

// chainName is a pod's chain of one direction: stable for the pod's namespace and name.
func chainName(dir string, p *policy.Pod) string { return dir[:3] + "-" + hash(p.Ref()) }

// counterName is a policy's deny counter of one direction.
func counterName(dir string, pol *policy.Policy) string {
	return "deny-" + dir[:3] + "-" + hash(pol.Ref())
}

func hash(s string) string {
	h := fnv.New64a()
	h.Write([]byte(s))
	return fmt.Sprintf("%016x", h.Sum64())
}

// clip bounds a comment to nftables' 128 bytes.
func clip(s string) string {
	if len(s) > 120 {
		return s[:117] + "..."
	}
	return s
}
