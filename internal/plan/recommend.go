package plan

import "fmt"

// recommend picks the first fitting backend in an order that suits the environment (in a VPC: ali-vpc, then
// eni; on one L2 segment: host-gw; else vxlan) and says why, including why each better-ranked backend was passed over.
func recommend(in Input, results []Result) *Recommendation {
	fits := map[string]Result{}
	for _, r := range results {
		if r.Fits {
			fits[r.Backend] = r
		}
	}
	order := []string{VXLAN, HostGW, AliVPC, ENI, ENIExclusive}
	switch {
	case in.VPCCIDR.IsValid():
		order = []string{AliVPC, ENI, VXLAN, ENIExclusive, HostGW}
	case in.L2Adjacent:
		order = []string{HostGW, VXLAN, AliVPC, ENI, ENIExclusive}
	}
	for _, name := range order {
		r, ok := fits[name]
		if !ok {
			continue
		}
		rec := &Recommendation{Backend: name, Reasons: []string{fmt.Sprintf("%s pods per node and %s nodes (%s pods) per cluster; %s binds the nodes",
			count(r.PodsPerNode), count(r.NodesPerCluster), count(r.PodsPerCluster), r.NodeLimit)}}
		switch name {
		case AliVPC:
			rec.Reasons = append(rec.Reasons, "no encapsulation: pod traffic crosses the VPC at underlay speed with the full MTU",
				"pods keep their addresses towards the VPC (no NAT inside it)")
		case ENI:
			rec.Reasons = append(rec.Reasons, "pods hold VPC addresses on the nodes' ENIs: no route-table entry per node, so the route-table quota does not cap the cluster")
		case ENIExclusive:
			rec.Reasons = append(rec.Reasons, "each pod owns an ENI: the full interface's bandwidth and security groups per pod, at few pods per node")
		case HostGW:
			rec.Reasons = append(rec.Reasons, "no encapsulation: nodes on one L2 segment route pod subnets to each other directly")
		case VXLAN:
			rec.Reasons = append(rec.Reasons, "works over any IP underlay with nothing to provision; costs 50 bytes of MTU and some CPU per packet")
		}
		for _, o := range order {
			if o == name {
				break
			}
			for _, res := range results {
				if res.Backend == o && !res.Fits {
					rec.Reasons = append(rec.Reasons, fmt.Sprintf("not %s: %s", o, res.Errors[0].Message))
				}
			}
		}
		return rec
	}
	return nil
}
