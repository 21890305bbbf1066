// Package explain answers "why is this connection allowed or denied?" from the API objects alone, with the same
// evaluator (internal/policy) the engine renders into nftables, so what it says is what is enforced: the verdict,
// and for each direction the policies that isolate the pod and each of their rules, with whether its peers and
// its ports match the connection. `weft policy explain` prints it.
package explain

import (
	"fmt"
	"io"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/weftnet/weft/internal/policy"
)

// Input is the connection and the objects that decide it.
type Input struct {
	From, To   *corev1.Pod // To nil: ToIP is outside any pod
	ToIP       netip.Addr
	Protocol   corev1.Protocol
	Port       int32
	Namespaces []corev1.Namespace
	Policies   []networkingv1.NetworkPolicy
}

// Report is the explanation.
type Report struct {
	From     string    `json:"from"`
	To       string    `json:"to"`
	Port     string    `json:"port"`
	Allowed  bool      `json:"allowed"`
	Loopback bool      `json:"loopback,omitempty"`
	Egress   Direction `json:"egress"`
	Ingress  Direction `json:"ingress"`
	Skipped  []string  `json:"skipped,omitempty"` // policies that do not compile, left out as the engine leaves them
}

// Direction is one side's part.
type Direction struct {
	Pod      string   `json:"pod,omitempty"`
	Applies  bool     `json:"applies"` // false: not a pod policy applies to (outside any pod, host network, terminated)
	Isolated bool     `json:"isolated"`
	Allowed  bool     `json:"allowed"`
	Policies []Policy `json:"policies,omitempty"`
}

// Policy is a policy that isolates the pod in the direction, with its rules.
type Policy struct {
	Name  string `json:"name"`
	Rules []Rule `json:"rules"`
}

// Rule is one rule and how it meets the connection.
type Rule struct {
	Index     int    `json:"index"`
	Text      string `json:"text"`
	PeerMatch bool   `json:"peerMatches"`
	PortMatch bool   `json:"portMatches"`
}

// Explain evaluates the connection.
func Explain(in Input) Report {
	var ps []*policy.Policy
	var skipped []string
	for i := range in.Policies {
		p, err := policy.Compile(&in.Policies[i])
		if err != nil {
			skipped = append(skipped, err.Error())
			continue
		}
		ps = append(ps, p)
	}
	nsl := map[string]labels.Set{}
	for _, n := range in.Namespaces {
		nsl[n.Name] = labels.Set(n.Labels)
	}
	ns := func(n string) (labels.Set, bool) { l, ok := nsl[n]; return l, ok }
	from := policy.PodOf(in.From)
	src := policy.Endpoint{Pod: from}
	if len(from.IPs) > 0 {
		src.IP = from.IPs[0]
	}
	dst := policy.Endpoint{IP: in.ToIP}
	toName := in.ToIP.String()
	if in.To != nil {
		dst.Pod = policy.PodOf(in.To)
		toName = dst.Pod.Ref()
		if !dst.IP.IsValid() && len(dst.Pod.IPs) > 0 {
			dst.IP = dst.Pod.IPs[0]
		}
	}
	c := policy.Conn{Src: src, Dst: dst, Protocol: in.Protocol, Port: in.Port}
	v := policy.Evaluate(ps, ns, c)
	r := Report{From: from.Ref(), To: toName, Port: fmt.Sprintf("%d/%s", in.Port, in.Protocol), Allowed: v.Allowed(), Loopback: v.Loopback, Skipped: skipped}
	r.Egress = direction(ps, ns, c, v.Egress, src.Pod, dst, true)
	r.Ingress = direction(ps, ns, c, v.Ingress, dst.Pod, src, false)
	return r
}

func direction(ps []*policy.Policy, ns policy.Namespaces, c policy.Conn, d policy.Direction, end *policy.Pod, other policy.Endpoint, egress bool) Direction {
	out := Direction{Applies: d.Applies, Isolated: len(d.Selecting) > 0, Allowed: d.Allowed()}
	if end != nil {
		out.Pod = end.Ref()
	}
	for _, name := range d.Selecting {
		for _, p := range ps {
			if p.Ref() != name {
				continue
			}
			rules := p.IngressRules
			if egress {
				rules = p.EgressRules
			}
			pr := Policy{Name: name, Rules: []Rule{}}
			for i := range rules {
				pr.Rules = append(pr.Rules, Rule{Index: i, Text: rules[i].Describe(p.Namespace, egress),
					PeerMatch: rules[i].MatchesPeer(other, p.Namespace, ns), PortMatch: rules[i].MatchesPort(c)})
			}
			out.Policies = append(out.Policies, pr)
		}
	}
	return out
}

// Write prints the report for people.
func (r Report) Write(w io.Writer) {
	verdict := "DENIED"
	if r.Allowed {
		verdict = "ALLOWED"
	}
	fmt.Fprintf(w, "%s -> %s on %s: %s\n", r.From, r.To, r.Port, verdict)
	if r.Loopback {
		fmt.Fprintln(w, "  a pod's connection to itself: no policy restricts it")
	}
	writeDirection(w, "egress", r.Egress)
	writeDirection(w, "ingress", r.Ingress)
	for _, s := range r.Skipped {
		fmt.Fprintf(w, "  left out (does not compile, the engine leaves it out too): %s\n", s)
	}
}

func writeDirection(w io.Writer, dir string, d Direction) {
	switch {
	case !d.Applies:
		fmt.Fprintf(w, "  %s: allowed: no pod policy applies to that end (outside any pod, host network or terminated)\n", dir)
		return
	case !d.Isolated:
		fmt.Fprintf(w, "  %s of %s: allowed: no policy selects it for %s\n", dir, d.Pod, dir)
		return
	}
	var names []string
	for _, p := range d.Policies {
		names = append(names, p.Name)
	}
	verdict := "denied: no rule admits it"
	if d.Allowed {
		verdict = "allowed"
	}
	fmt.Fprintf(w, "  %s of %s: isolated by %s: %s\n", dir, d.Pod, strings.Join(names, ", "), verdict)
	for _, p := range d.Policies {
		if len(p.Rules) == 0 {
			fmt.Fprintf(w, "    %s: no %s rules (denies all %s)\n", p.Name, dir, dir)
		}
		for _, rule := range p.Rules {
			mark := "no"
			switch {
			case rule.PeerMatch && rule.PortMatch:
				mark = "ADMITS"
			case rule.PeerMatch:
				mark = "no (port)"
			case rule.PortMatch:
				mark = "no (peer)"
			}
			fmt.Fprintf(w, "    %s %s[%d] %-9s %s\n", p.Name, dir, rule.Index, mark, rule.Text)
		}
	}
}
