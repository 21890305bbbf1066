package policy

import (
	"encoding/json"
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Whatever a NetworkPolicy holds (the engine reads them from the API, explain too), Compile does not panic, and a
// compiled policy evaluates any connection without panicking.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		`{"metadata":{"namespace":"x","name":"p"},"spec":{"podSelector":{},"policyTypes":["Ingress"]}}`,
		`{"metadata":{"namespace":"x","name":"p"},"spec":{"podSelector":{"matchLabels":{"a":"b"}},"ingress":[{"from":[{"ipBlock":{"cidr":"10.0.0.0/8","except":["10.1.0.0/16"]}}],"ports":[{"port":80,"endPort":90}]}]}}`,
		`{"metadata":{"namespace":"x","name":"p"},"spec":{"egress":[{"to":[{"namespaceSelector":{"matchExpressions":[{"key":"k","operator":"NotIn","values":["v"]}]},"podSelector":{}}],"ports":[{"port":"http","protocol":"UDP"}]}]}}`,
		`{"spec":{"ingress":[{"from":[{}]}]}}`, `{"spec":{"policyTypes":["X"]}}`,
	} {
		f.Add([]byte(s), uint16(80))
	}
	f.Fuzz(func(t *testing.T, data []byte, port uint16) {
		var np networkingv1.NetworkPolicy
		if json.Unmarshal(data, &np) != nil {
			return
		}
		p, err := Compile(&np)
		if err != nil {
			if p != nil {
				t.Fatalf("a policy with an error: %v", err)
			}
			return
		}
		a := &Pod{Namespace: np.Namespace, Name: "a", Labels: map[string]string{"a": "b"}, IPs: []netip.Addr{netip.MustParseAddr("10.1.2.3")},
			Ports: []ContainerPort{{"http", corev1.ProtocolUDP, 53}}}
		b := &Pod{Namespace: "y", Name: "b", IPs: []netip.Addr{netip.MustParseAddr("10.0.0.9")}}
		ns := func(string) (labels.Set, bool) { return labels.Set{"k": "v"}, true }
		for _, proto := range []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP} {
			Evaluate([]*Policy{p}, ns, Conn{Src: Endpoint{b, b.IPs[0]}, Dst: Endpoint{a, a.IPs[0]}, Protocol: proto, Port: int32(port)})
			Evaluate([]*Policy{p}, ns, Conn{Src: Endpoint{a, a.IPs[0]}, Dst: Endpoint{IP: netip.MustParseAddr("8.8.8.8")}, Protocol: proto, Port: int32(port)})
		}
		for i := range p.IngressRules {
			for j := range p.IngressRules[i].Peers {
				if blk := p.IngressRules[i].Peers[j].IPBlock; blk != nil {
					_ = blk.Prefixes()
				}
			}
		}
	})
}
