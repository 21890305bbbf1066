package policy

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
)

// PodOf is what policy needs of a Kubernetes pod: labels, addresses, host network, whether it has terminated,
// its containers' named ports (sidecars among the init containers too).
func PodOf(p *corev1.Pod) *Pod {
	out := &Pod{Namespace: p.Namespace, Name: p.Name, Labels: p.Labels, HostNetwork: p.Spec.HostNetwork,
		Terminated: p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed}
	for _, ip := range p.Status.PodIPs {
		if a, err := netip.ParseAddr(ip.IP); err == nil {
			out.IPs = append(out.IPs, a.Unmap())
		}
	}
	if len(out.IPs) == 0 && p.Status.PodIP != "" {
		if a, err := netip.ParseAddr(p.Status.PodIP); err == nil {
			out.IPs = append(out.IPs, a.Unmap())
		}
	}
	for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range cs {
			for _, port := range c.Ports {
				if port.Name == "" {
					continue
				}
				proto := port.Protocol
				if proto == "" {
					proto = corev1.ProtocolTCP
				}
				out.Ports = append(out.Ports, ContainerPort{Name: port.Name, Protocol: proto, Port: port.ContainerPort})
			}
		}
	}
	return out
}
