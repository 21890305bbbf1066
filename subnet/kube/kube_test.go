package kube

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/weftnet/weft/subnet"
)

func newManager(t *testing.T, conf string, nodes ...*corev1.Node) (*Manager, *fake.Clientset) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "net-conf.json")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cs := fake.NewClientset()
	for _, n := range nodes {
		if _, err := cs.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	m, err := New(ctx, Options{Client: cs, NodeName: "n1", NetConfPath: path, AnnotationPrefix: "example.com/flannel",
		SetNodeNetworkUnavailable: true})
	if err != nil {
		t.Fatal(err)
	}
	return m, cs
}

func node(name string, cidrs []string, ann map[string]string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: ann}, Spec: corev1.NodeSpec{PodCIDRs: cidrs}}
	if len(cidrs) > 0 {
		n.Spec.PodCIDR = cidrs[0]
	}
	return n
}

const v4conf = `{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}`

func TestAnnotationPrefix(t *testing.T) {
	for _, p := range []string{"example.com/flannel", "example.com/flannel/"} {
		if got := NewAnnotations(p).BackendData; got != "example.com/flannel/backend-data" {
			t.Errorf("prefix %q: %s", p, got)
		}
	}
	if got := NewAnnotations("").KubeManaged; got != "flannel.alpha.coreos.com/kube-subnet-manager" {
		t.Errorf("default prefix: %s", got)
	}
}

func TestAcquireOnNodeWithoutAnnotations(t *testing.T) {
	m, cs := newManager(t, v4conf, node("n1", []string{"10.244.3.0/24"}, nil))
	attrs := &subnet.LeaseAttrs{PublicIP: netip.MustParseAddr("192.0.2.1"), BackendType: "vxlan",
		BackendData: json.RawMessage(`{"VNI":1,"VtepMAC":"0e:00:00:00:00:01"}`)}
	l, err := m.AcquireLease(context.Background(), attrs)
	if err != nil {
		t.Fatal(err)
	}
	if l.Subnet != netip.MustParsePrefix("10.244.3.0/24") || l.Key() != "10.244.3.0-24" {
		t.Fatalf("lease %v", l.Subnet)
	}
	n, _ := cs.CoreV1().Nodes().Get(context.Background(), "n1", metav1.GetOptions{})
	want := map[string]string{
		"example.com/flannel/kube-subnet-manager": "true", "example.com/flannel/backend-type": "vxlan",
		"example.com/flannel/backend-data": `{"VNI":1,"VtepMAC":"0e:00:00:00:00:01"}`, "example.com/flannel/public-ip": "192.0.2.1",
	}
	for k, v := range want {
		if n.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, n.Annotations[k], v)
		}
	}
	prev, err := m.PreviousLease(context.Background(), attrs)
	if err != nil || prev == nil || string(prev.Attrs.BackendData) != want["example.com/flannel/backend-data"] {
		t.Fatalf("PreviousLease %+v %v", prev, err)
	}
	if err := m.CompleteLease(context.Background(), l); err != nil {
		t.Fatal(err)
	}
}

func TestPodCIDRErrors(t *testing.T) {
	cases := []struct {
		conf  string
		cidrs []string
		want  string
	}{
		{v4conf, nil, `node "n1" pod cidr not assigned`},
		{v4conf, []string{"10.99.0.0/24"}, "pod CIDR 10.99.0.0/24 is not inside Network 10.244.0.0/16"},
		{`{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00::/56"}`, []string{"10.244.1.0/24"}, "no IPv6 pod CIDR"},
		{`{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00::/56"}`, []string{"10.244.1.0/24", "fd01::/64"}, "not inside IPv6Network"},
	}
	for _, c := range cases {
		m, _ := newManager(t, c.conf, node("n1", c.cidrs, map[string]string{}))
		_, err := m.AcquireLease(context.Background(), &subnet.LeaseAttrs{PublicIP: netip.MustParseAddr("192.0.2.1"), PublicIPv6: netip.MustParseAddr("fd00:2::1")})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err %v, want %q", c.cidrs, err, c.want)
		}
	}
}

func TestOverwriteAndDualStackInOnePatch(t *testing.T) {
	m, cs := newManager(t, `{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00::/56"}`,
		node("n1", []string{"10.244.1.0/24", "fd00:0:0:1::/64"}, map[string]string{"example.com/flannel/public-ip-overwrite": "198.51.100.9"}))
	attrs := &subnet.LeaseAttrs{PublicIP: netip.MustParseAddr("192.0.2.1"), PublicIPv6: netip.MustParseAddr("fd00:2::1"), BackendType: "host-gw"}
	l, err := m.AcquireLease(context.Background(), attrs)
	if err != nil {
		t.Fatal(err)
	}
	if l.Attrs.PublicIP.String() != "198.51.100.9" || l.IPv6Subnet.String() != "fd00:0:0:1::/64" {
		t.Fatalf("lease %+v", l)
	}
	// Only the IPv6 side changes: it must not be dropped.
	attrs.PublicIPv6 = netip.MustParseAddr("fd00:2::99")
	if _, err := m.AcquireLease(context.Background(), attrs); err != nil {
		t.Fatal(err)
	}
	n, _ := cs.CoreV1().Nodes().Get(context.Background(), "n1", metav1.GetOptions{})
	if n.Annotations["example.com/flannel/public-ipv6"] != "fd00:2::99" || n.Annotations["example.com/flannel/public-ip"] != "198.51.100.9" {
		t.Errorf("annotations %v", n.Annotations)
	}
}

func TestWatchLeases(t *testing.T) {
	peer := node("n2", []string{"10.244.2.0/24"}, map[string]string{
		"example.com/flannel/kube-subnet-manager": "true", "example.com/flannel/backend-type": "vxlan",
		"example.com/flannel/public-ip": "192.0.2.2", "example.com/flannel/backend-data": `{"VNI":1,"VtepMAC":"0e:00:00:00:00:02"}`})
	stranger := node("n3", []string{"10.244.3.0/24"}, nil) // not a peer: no kube-subnet-manager annotation
	m, cs := newManager(t, v4conf, node("n1", []string{"10.244.1.0/24"}, nil), peer, stranger)
	// The fake clientset drops events that happen between the informer's List and its Watch (the real API
	// server resumes from the resource version), so wait until the watch is registered before changing nodes.
	watching := make(chan struct{})
	var once sync.Once
	cs.PrependWatchReactor("nodes", func(a k8stesting.Action) (bool, watch.Interface, error) {
		w, err := cs.Tracker().Watch(a.GetResource(), a.GetNamespace())
		once.Do(func() { close(watching) }) // the tracker has registered the watcher: no event can slip by
		return true, w, err
	})
	ch := make(chan []subnet.Event, 8)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = m.WatchLeases(ctx, ch) }()
	snap := recv(t, ch)
	if len(snap) != 1 || snap[0].Lease.Subnet.String() != "10.244.2.0/24" || snap[0].Lease.Attrs.PublicIP.String() != "192.0.2.2" {
		t.Fatalf("snapshot %+v", snap)
	}
	select {
	case <-watching:
	case <-time.After(10 * time.Second):
		t.Fatal("the node informer never started watching")
	}
	if err := cs.CoreV1().Nodes().Delete(ctx, "n2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if ev := recv(t, ch); len(ev) != 1 || ev[0].Type != subnet.EventRemoved || ev[0].Lease.Subnet.String() != "10.244.2.0/24" {
		t.Fatalf("removal %+v", ev)
	}
}

func recv(t *testing.T, ch <-chan []subnet.Event) []subnet.Event {
	t.Helper()
	select {
	case b := <-ch:
		return b
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
		return nil
	}
}

func TestBadNetConf(t *testing.T) {
	path := filepath.Join(t.TempDir(), "net-conf.json")
	_ = os.WriteFile(path, []byte(`{"Backend":{"Type":"vxlan"}}`), 0o644)
	_, err := New(context.Background(), Options{Client: fake.NewClientset(), NodeName: "n1", NetConfPath: path})
	if err == nil || !strings.Contains(err.Error(), "Network: required") || !strings.Contains(err.Error(), path) {
		t.Fatalf("err %v", err)
	}
	if _, err := New(context.Background(), Options{Client: fake.NewClientset(), NodeName: "n1", NetConfPath: "/nope.json"}); err == nil ||
		!strings.Contains(err.Error(), "--net-config-path") {
		t.Fatalf("missing file err %v", err)
	}
}
