package explain

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func pod(ns, name, ip string, l map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: l},
		Status: corev1.PodStatus{PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}}
}

func TestExplain(t *testing.T) {
	p80 := intstr.FromInt32(80)
	tcp := corev1.ProtocolTCP
	nss := []corev1.Namespace{{ObjectMeta: metav1.ObjectMeta{Name: "x", Labels: map[string]string{"ns": "x"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "y", Labels: map[string]string{"ns": "y"}}}}
	web := networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "y", Name: "web"}, Spec: networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		Ingress: []networkingv1.NetworkPolicyIngressRule{
			{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"ns": "x"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &p80}}}}}}
	bad := networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "y", Name: "bad"}, Spec: networkingv1.NetworkPolicySpec{
		PolicyTypes: []networkingv1.PolicyType{"Sideways"}}}
	in := Input{From: pod("x", "client", "10.244.0.5", nil), To: pod("y", "web-0", "10.244.1.7", map[string]string{"app": "web"}),
		Protocol: corev1.ProtocolTCP, Port: 80, Namespaces: nss, Policies: []networkingv1.NetworkPolicy{web, bad}}
	r := Explain(in)
	if !r.Allowed || r.Egress.Isolated || !r.Ingress.Isolated || len(r.Ingress.Policies) != 1 || !r.Ingress.Policies[0].Rules[0].PeerMatch ||
		len(r.Skipped) != 1 || !strings.Contains(r.Skipped[0], "y/bad: spec.policyTypes") {
		t.Fatalf("80/TCP from x: %+v", r)
	}
	var b bytes.Buffer
	r.Write(&b)
	for _, want := range []string{"x/client -> y/web-0 on 80/TCP: ALLOWED", "egress of x/client: allowed: no policy selects it",
		"ingress of y/web-0: isolated by y/web: allowed", "y/web ingress[0] ADMITS    from every pod of namespaces {ns=x}, on 80/TCP"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
	in.Port = 81
	if r := Explain(in); r.Allowed || r.Ingress.Policies[0].Rules[0].PortMatch || !r.Ingress.Policies[0].Rules[0].PeerMatch {
		t.Errorf("81/TCP: %+v", r)
	}
	in.Port, in.From = 80, pod("y", "other", "10.244.1.9", nil)
	r = Explain(in)
	b.Reset()
	r.Write(&b)
	if r.Allowed || !strings.Contains(b.String(), "DENIED") || !strings.Contains(b.String(), "no (peer)") {
		t.Errorf("from y: %+v\n%s", r, b.String())
	}
	// An address outside any pod: only the source's egress can decide.
	in.To, in.ToIP = nil, netip.MustParseAddr("192.0.2.1")
	if r := Explain(in); !r.Allowed || r.Ingress.Applies || r.To != "192.0.2.1" {
		t.Errorf("to an outside address: %+v", r)
	}
}
