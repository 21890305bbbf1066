package plan

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteText prints the plan for people: the input as understood, a table of backends, each backend's errors
// and warnings, and the recommendation.
func (p *Plan) WriteText(w io.Writer) error {
	in := p.Input
	var b strings.Builder
	fmt.Fprintf(&b, "weft plan")
	if in.Nodes > 0 {
		fmt.Fprintf(&b, " for %d nodes", in.Nodes)
	}
	b.WriteString("\n")
	if len(in.PodCIDRs) > 0 {
		fmt.Fprintf(&b, "  pod CIDR      %s (node subnets", strings.Join(in.PodCIDRs, ", "))
		if in.SubnetLen > 0 {
			fmt.Fprintf(&b, " /%d", in.SubnetLen)
		}
		if in.IPv6SubnetLen > 0 {
			fmt.Fprintf(&b, " /%d", in.IPv6SubnetLen)
		}
		fmt.Fprintf(&b, ", %s subnet manager)\n", in.SubnetManager)
	}
	if len(in.ServiceCIDRs) > 0 {
		fmt.Fprintf(&b, "  service CIDR  %s\n", strings.Join(in.ServiceCIDRs, ", "))
	}
	if in.VPCCIDR != "" {
		fmt.Fprintf(&b, "  VPC           %s, route-table quota %d (%d taken by others)\n", in.VPCCIDR, in.Quota, in.EntriesUsed)
	}
	if len(in.VSwitchCIDRs)+len(in.PodVSwitchCIDRs) > 0 {
		fmt.Fprintf(&b, "  vSwitches     %s", strings.Join(in.VSwitchCIDRs, ", "))
		if len(in.PodVSwitchCIDRs) > 0 {
			fmt.Fprintf(&b, "; for pods %s", strings.Join(in.PodVSwitchCIDRs, ", "))
		}
		b.WriteString("\n")
	}
	for _, t := range in.InstanceTypes {
		trunk := ""
		if t.ExclusiveTrunkENIPods > 0 {
			trunk = fmt.Sprintf(", exclusive with trunking %d: %d ENIs - the primary - the trunk + %d member ENIs",
				t.ExclusiveTrunkENIPods, t.ENIs, t.TrunkENIPods)
		}
		fmt.Fprintf(&b, "  instance type %s: %d ENIs x %d IPv4 addresses (shared ENI %d pods, exclusive ENI %d%s)\n",
			t.ID, t.ENIs, t.IPv4PerENI, t.SharedENIPods, t.ExclusiveENIPods, trunk)
	}
	if in.TypeSource != "" {
		fmt.Fprintf(&b, "  (instance types from %s)\n", in.TypeSource)
	}
	b.WriteString("\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BACKEND\tPODS/NODE\tNODES\tPODS\tPODS/NODE LIMIT\tNODES LIMIT\tFITS")
	for _, r := range p.Backends {
		fits := "yes"
		if !r.Fits {
			fits = "no"
		}
		dash := func(s string) string {
			if s == "" {
				return "-"
			}
			return s
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Backend, count(r.PodsPerNode), count(r.NodesPerCluster),
			count(r.PodsPerCluster), dash(r.PodLimit), dash(r.NodeLimit), fits)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	b.Reset()
	for _, r := range p.Backends {
		if len(r.Errors)+len(r.Warnings) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%s:\n", r.Backend)
		for _, f := range r.Errors {
			fmt.Fprintf(&b, "  error   %s: %s\n", f.Code, f.Message)
		}
		for _, f := range r.Warnings {
			fmt.Fprintf(&b, "  warning %s: %s\n", f.Code, f.Message)
		}
	}
	if p.Recommendation == nil {
		b.WriteString("\nNo backend fits this plan.\n")
	} else {
		fmt.Fprintf(&b, "\nRecommended: %s\n", p.Recommendation.Backend)
		for _, r := range p.Recommendation.Reasons {
			fmt.Fprintf(&b, "  - %s\n", r)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
