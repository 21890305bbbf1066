package kube

import (
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftnet/weft/subnet"
)

// FuzzLeaseFromNode: whatever a node's pod CIDRs and flannel annotations hold (any writer can set them), the
// node is skipped or read into a peer lease whose subnets and public addresses are of their family, whose key
// reads back, and whose backend data is JSON. It never panics.
func FuzzLeaseFromNode(f *testing.F) {
	f.Add("10.244.1.0/24", "fd00:244:1::/64", "true", "vxlan", `{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:01"}`, `{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:02"}`, "10.0.0.1", "fd00::1")
	f.Add("10.244.1.0/24", "", "true", "host-gw", "", "", "10.0.0.1", "")
	f.Add("10.244.1.5/24", "10.244.2.0/24", "true", "vxlan", `{"VNI":`, "", "10.0.0.1", "")
	f.Add("fd00::/64", "10.244.1.0/24", "true", "vxlan", "null", "[]", "::ffff:10.0.0.1", "10.0.0.1")
	f.Add("10.244.1.0/24", "fd00:244:1::/64", "true", "vxlan", "", "", "", "::ffff:10.0.0.1")
	f.Add("10.244.1.0/24", "fd00:244:1::/64", "true", "vxlan", "", "", "", "fe80::1%eth0")
	f.Add("bogus", "", "true", "vxlan", "", "", "10.0.0.1", "")
	f.Add("10.244.1.0/24", "", "false", "vxlan", "", "", "10.0.0.1", "")
	m := &Manager{ann: NewAnnotations(""), cfg: &subnet.Config{EnableIPv4: true, EnableIPv6: true}}
	f.Fuzz(func(t *testing.T, cidr4, cidr6, managed, btype, data, data6, ip, ip6 string) {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Annotations: map[string]string{
			m.ann.KubeManaged: managed, m.ann.BackendType: btype, m.ann.BackendData: data, m.ann.BackendV6Data: data6,
			m.ann.PublicIP: ip, m.ann.PublicIPv6: ip6}}}
		for _, c := range []string{cidr4, cidr6} {
			if c != "" {
				n.Spec.PodCIDRs = append(n.Spec.PodCIDRs, c)
			}
		}
		l, ok := m.leaseFromNode(n)
		if !ok {
			return
		}
		if !l.EnableIPv4 && !l.EnableIPv6 {
			t.Fatal("a lease of no family")
		}
		if l.EnableIPv4 && (!l.Subnet.Addr().Is4() || !l.Attrs.PublicIP.Is4() || l.Subnet.Masked() != l.Subnet) {
			t.Fatalf("IPv4 part %v via %v", l.Subnet, l.Attrs.PublicIP)
		}
		if l.EnableIPv6 && (!l.IPv6Subnet.Addr().Is6() || l.IPv6Subnet.Addr().Is4In6() || !l.Attrs.PublicIPv6.Is6() || l.Attrs.PublicIPv6.Is4In6()) {
			t.Fatalf("IPv6 part %v via %v", l.IPv6Subnet, l.Attrs.PublicIPv6)
		}
		if v4, v6, err := subnet.ParseLeaseKey(l.Key()); err != nil || v4 != l.Subnet || v6 != l.IPv6Subnet {
			t.Fatalf("key %s reads as %v %v %v", l.Key(), v4, v6, err)
		}
		for _, d := range []json.RawMessage{l.Attrs.BackendData, l.Attrs.BackendV6Data} {
			if len(d) > 0 && !json.Valid(d) {
				t.Fatalf("backend data %q is not JSON", d)
			}
		}
		if _, err := json.Marshal(l.Attrs); err != nil {
			t.Fatalf("attributes do not write: %v", err)
		}
	})
}
