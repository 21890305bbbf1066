package engine

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"

	"github.com/weftnet/weft/internal/policy"
)

// PodOf is what policy needs of a Kubernetes pod: labels, addresses, host network, whether it has terminated,
// its containers' named ports (sidecars among the init containers too).
func PodOf(p *corev1.Pod) *policy.Pod {
	out := &policy.Pod{Namespace: p.Namespace, Name: p.Name, Labels: p.Labels, HostNetwork: p.Spec.HostNetwork,
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
				out.Ports = append(out.Ports, policy.ContainerPort{Name: port.Name, Protocol: proto, Port: port.ContainerPort})
			}
		}
	}
	return out
}

// TrimPod keeps of a pod what PodOf and the engine read (an informer transform: the cache holds less).
// Idempotent, as a TransformFunc must be.
func TrimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	t := &corev1.Pod{}
	t.Name, t.Namespace, t.UID, t.ResourceVersion, t.Labels = p.Name, p.Namespace, p.UID, p.ResourceVersion, p.Labels
	t.Spec.NodeName, t.Spec.HostNetwork = p.Spec.NodeName, p.Spec.HostNetwork
	t.Spec.Containers, t.Spec.InitContainers = portsOnly(p.Spec.Containers), portsOnly(p.Spec.InitContainers)
	t.Status.Phase, t.Status.PodIP, t.Status.PodIPs = p.Status.Phase, p.Status.PodIP, p.Status.PodIPs
	return t, nil
}

func portsOnly(cs []corev1.Container) []corev1.Container {
	var out []corev1.Container
	for _, c := range cs {
		if len(c.Ports) > 0 {
			out = append(out, corev1.Container{Name: c.Name, Ports: c.Ports})
		}
	}
	return out
}
