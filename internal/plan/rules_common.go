package plan

// checkCommon finds the overlaps that break any backend: services against the VPC, and (for the backends
// with a pod CIDR) pods against services and the VPC.
func checkCommon(in Input, b *builder, backend string) {
	podCIDR := backend == VXLAN || backend == HostGW || backend == AliVPC
	for _, s := range in.ServiceCIDRs {
		if in.VPCCIDR.IsValid() && s.Overlaps(in.VPCCIDR) {
			b.err("ServiceCIDROverlapsVPC", "the service CIDR %s overlaps the VPC %s: pods could not reach the VPC addresses it shadows", s, in.VPCCIDR)
		}
		if !podCIDR {
			for _, sw := range in.PodVSwitchCIDRs {
				if s.Overlaps(sw) {
					b.err("ServiceCIDROverlapsVSwitch", "the service CIDR %s overlaps the pod vSwitch %s", s, sw)
				}
			}
			continue
		}
		for _, p := range in.PodCIDRs {
			if s.Overlaps(p) {
				b.err("PodCIDROverlapsServiceCIDR", "the pod CIDR %s overlaps the service CIDR %s", p, s)
			}
		}
	}
	if !podCIDR {
		return
	}
	for _, p := range in.PodCIDRs {
		if in.VPCCIDR.IsValid() && p.Overlaps(in.VPCCIDR) {
			b.err("PodCIDROverlapsVPC", "the pod CIDR %s overlaps the VPC %s: pod and VPC addresses would collide", p, in.VPCCIDR)
		}
	}
}
