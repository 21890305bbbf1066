package policy

import (
	"fmt"
	"strings"
)

// Describe says in words what the rule admits, for `weft policy explain`: its peers ("from"/"to") and ports.
func (r *Rule) Describe(policyNS string, egress bool) string {
	dir := "from"
	if egress {
		dir = "to"
	}
	peers := "any peer"
	if len(r.Peers) > 0 {
		var ps []string
		for i := range r.Peers {
			ps = append(ps, r.Peers[i].Describe(policyNS))
		}
		peers = strings.Join(ps, " or ")
	}
	ports := "any port"
	if len(r.Ports) > 0 {
		var ps []string
		for i := range r.Ports {
			ps = append(ps, r.Ports[i].Describe())
		}
		ports = strings.Join(ps, ", ")
	}
	return fmt.Sprintf("%s %s, on %s", dir, peers, ports)
}

// Describe says which peers the entry matches.
func (pe *Peer) Describe(policyNS string) string {
	if pe.IPBlock != nil {
		s := pe.IPBlock.CIDR.String()
		for _, e := range pe.IPBlock.Except {
			s += " except " + e.String()
		}
		return s
	}
	pods := "every pod"
	if pe.Pods != nil && !pe.Pods.Empty() {
		pods = "pods {" + pe.Pods.String() + "}"
	}
	ns := "of namespace " + policyNS
	if pe.Namespaces != nil {
		ns = "of every namespace"
		if !pe.Namespaces.Empty() {
			ns = "of namespaces {" + pe.Namespaces.String() + "}"
		}
	}
	return pods + " " + ns
}

// Describe writes the port as 80/TCP, 80-90/TCP, http/TCP or TCP (every port).
func (po *Port) Describe() string {
	switch {
	case po.Name != "":
		return po.Name + "/" + string(po.Protocol)
	case po.Port == 0:
		return "every " + string(po.Protocol) + " port"
	case po.EndPort != 0:
		return fmt.Sprintf("%d-%d/%s", po.Port, po.EndPort, po.Protocol)
	}
	return fmt.Sprintf("%d/%s", po.Port, po.Protocol)
}
