package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
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
	// The same node name with another pod CIDR (a node re-created while nobody watched): the old subnet goes,
	// the new one comes, in one batch.
	n2, _ := cs.CoreV1().Nodes().Get(ctx, "n2", metav1.GetOptions{})
	n2.Spec.PodCIDR, n2.Spec.PodCIDRs = "10.244.9.0/24", []string{"10.244.9.0/24"}
	if _, err := cs.CoreV1().Nodes().Update(ctx, n2, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if ev := recv(t, ch); len(ev) != 2 || ev[0].Type != subnet.EventRemoved || ev[0].Lease.Subnet.String() != "10.244.2.0/24" ||
		ev[1].Type != subnet.EventAdded || ev[1].Lease.Subnet.String() != "10.244.9.0/24" {
		t.Fatalf("re-keyed lease %+v", ev)
	}
	if err := cs.CoreV1().Nodes().Delete(ctx, "n2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if ev := recv(t, ch); len(ev) != 1 || ev[0].Type != subnet.EventRemoved || ev[0].Lease.Subnet.String() != "10.244.9.0/24" {
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

func TestIPv6OverwriteAndBadOverwrites(t *testing.T) {
	dual := `{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00::/56"}`
	cidrs := []string{"10.244.1.0/24", "fd00:0:0:1::/64"}
	attrs := &subnet.LeaseAttrs{PublicIP: netip.MustParseAddr("192.0.2.1"), PublicIPv6: netip.MustParseAddr("fd00:2::1"), BackendType: "host-gw"}

	m, cs := newManager(t, dual, node("n1", cidrs, map[string]string{"example.com/flannel/public-ipv6-overwrite": "2001:db8::9"}))
	l, err := m.AcquireLease(context.Background(), attrs)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := cs.CoreV1().Nodes().Get(context.Background(), "n1", metav1.GetOptions{})
	if l.Attrs.PublicIPv6.String() != "2001:db8::9" || n.Annotations["example.com/flannel/public-ipv6"] != "2001:db8::9" ||
		n.Annotations["example.com/flannel/public-ip"] != "192.0.2.1" {
		t.Fatalf("lease %v, annotations %v: want the IPv6 overwrite and the IPv4 address as given", l.Attrs, n.Annotations)
	}

	for key, val := range map[string]string{
		"example.com/flannel/public-ip-overwrite":   "2001:db8::1", // wrong family
		"example.com/flannel/public-ipv6-overwrite": "not-an-ip",
	} {
		m, _ := newManager(t, dual, node("n1", cidrs, map[string]string{key: val}))
		_, err := m.AcquireLease(context.Background(), attrs)
		if err == nil || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), val) {
			t.Errorf("%s=%s: err %v, want one naming the annotation and its value", key, val, err)
		}
	}
}

func TestAcquireWithoutPublicIP(t *testing.T) {
	m, cs := newManager(t, v4conf, node("n1", []string{"10.244.1.0/24"}, nil))
	_, err := m.AcquireLease(context.Background(), &subnet.LeaseAttrs{BackendType: "vxlan"})
	if err == nil || !strings.Contains(err.Error(), "no public IPv4 address") {
		t.Fatalf("err %v", err)
	}
	if n, _ := cs.CoreV1().Nodes().Get(context.Background(), "n1", metav1.GetOptions{}); len(n.Annotations) != 0 {
		t.Fatalf("annotations %v written for a refused lease", n.Annotations)
	}
	// With the overwrite annotation the node has an address to publish.
	m, _ = newManager(t, v4conf, node("n1", []string{"10.244.1.0/24"}, map[string]string{"example.com/flannel/public-ip-overwrite": "198.51.100.1"}))
	if l, err := m.AcquireLease(context.Background(), &subnet.LeaseAttrs{BackendType: "vxlan"}); err != nil || l.Attrs.PublicIP.String() != "198.51.100.1" {
		t.Fatalf("lease %v, err %v", l, err)
	}
}

func TestLeaseFromNode(t *testing.T) {
	m, _ := newManager(t, `{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00::/56"}`)
	const p = "example.com/flannel/"
	peer := func(ann map[string]string) map[string]string {
		a := map[string]string{p + "kube-subnet-manager": "true", p + "backend-type": "vxlan"}
		for k, v := range ann {
			a[k] = v
		}
		return a
	}
	cases := []struct {
		name     string
		n        *corev1.Node
		ok       bool
		key      string
		v4, v6   bool
		v6public string
	}{
		{"nil annotations", node("a", []string{"10.244.1.0/24"}, nil), false, "", false, false, ""},
		{"not managed", node("a", []string{"10.244.1.0/24"}, map[string]string{p + "public-ip": "192.0.2.1"}), false, "", false, false, ""},
		{"managed under another prefix", node("a", []string{"10.244.1.0/24"}, map[string]string{
			"flannel.alpha.coreos.com/kube-subnet-manager": "true", "flannel.alpha.coreos.com/public-ip": "192.0.2.1"}), false, "", false, false, ""},
		{"no public IP", node("a", []string{"10.244.1.0/24"}, peer(nil)), false, "", false, false, ""},
		{"public IP of the wrong family", node("a", []string{"10.244.1.0/24"}, peer(map[string]string{p + "public-ip": "fd00::1"})), false, "", false, false, ""},
		{"IPv4 peer", node("a", []string{"10.244.1.0/24"}, peer(map[string]string{p + "public-ip": "192.0.2.1"})), true, "10.244.1.0-24", true, false, ""},
		{"dual-stack peer", node("a", []string{"10.244.1.0/24", "fd00:0:0:1::/64"}, peer(map[string]string{
			p + "public-ip": "192.0.2.1", p + "public-ipv6": "2001:db8::1"})), true, "10.244.1.0-24&fd00:0:0:1::-64", true, true, "2001:db8::1"},
		{"dual-stack CIDRs, IPv6 not published", node("a", []string{"10.244.1.0/24", "fd00:0:0:1::/64"}, peer(map[string]string{
			p + "public-ip": "192.0.2.1"})), true, "10.244.1.0-24", true, false, ""},
		{"no pod CIDR", node("a", nil, peer(map[string]string{p + "public-ip": "192.0.2.1"})), false, "", false, false, ""},
	}
	for _, c := range cases {
		l, ok := m.leaseFromNode(c.n)
		if ok != c.ok || (ok && (l.Key() != c.key || l.EnableIPv4 != c.v4 || l.EnableIPv6 != c.v6)) {
			t.Errorf("%s: lease %+v (key %s), ok %v; want ok %v key %s", c.name, l, l.Key(), ok, c.ok, c.key)
		}
		if ok && c.v6public != "" && l.Attrs.PublicIPv6.String() != c.v6public {
			t.Errorf("%s: public IPv6 %v", c.name, l.Attrs.PublicIPv6)
		}
	}
}

func TestWatchLeaseReportsEarlierRevocation(t *testing.T) {
	// The node lost its annotations before WatchLease was called: the revocation is still reported.
	m, _ := newManager(t, v4conf, node("n1", []string{"10.244.1.0/24"}, map[string]string{}))
	held := &subnet.Lease{EnableIPv4: true, Subnet: netip.MustParsePrefix("10.244.1.0/24"),
		Attrs: subnet.LeaseAttrs{PublicIP: netip.MustParseAddr("192.0.2.1"), BackendType: "vxlan"}}
	ch := make(chan []subnet.Event, 4)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = m.WatchLease(ctx, held, ch) }()
	if ev := recv(t, ch); len(ev) != 1 || ev[0].Type != subnet.EventRemoved || ev[0].Lease.Subnet != held.Subnet {
		t.Fatalf("events %+v, want the held lease removed", ev)
	}
}

func TestCompleteLeaseCondition(t *testing.T) {
	for _, set := range []bool{true, false} {
		m, cs := newManager(t, v4conf, node("n1", []string{"10.244.1.0/24"}, nil))
		m.o.SetNodeNetworkUnavailable = set
		if err := m.CompleteLease(context.Background(), &subnet.Lease{Attrs: subnet.LeaseAttrs{BackendType: "vxlan"}}); err != nil {
			t.Fatal(err)
		}
		n, _ := cs.CoreV1().Nodes().Get(context.Background(), "n1", metav1.GetOptions{})
		var got []string
		for _, c := range n.Status.Conditions {
			got = append(got, string(c.Type)+"="+string(c.Status)+"/"+c.Reason)
		}
		want := ""
		if set {
			want = "NetworkUnavailable=False/FlannelIsUp"
		}
		if strings.Join(got, ",") != want {
			t.Errorf("SetNodeNetworkUnavailable=%v: conditions %v, want %q", set, got, want)
		}
	}
}

// TestCacheNotReady runs WatchLeases while listing nodes fails, as on a slow or overloaded API server. By default
// the watch fails once CacheSyncTimeout has passed (upstream fails startup); with ContinueWhenCacheNotReady
// (CONT_WHEN_CACHE_NOT_READY=true) it waits on and, once the list succeeds, sends the full snapshot.
func TestCacheNotReady(t *testing.T) {
	for _, cont := range []bool{false, true} {
		t.Run(fmt.Sprintf("continue=%v", cont), func(t *testing.T) {
			peer := node("n2", []string{"10.244.2.0/24"}, map[string]string{
				"example.com/flannel/kube-subnet-manager": "true", "example.com/flannel/backend-type": "vxlan",
				"example.com/flannel/public-ip": "192.0.2.2"})
			m, cs := newManager(t, v4conf, node("n1", []string{"10.244.1.0/24"}, nil), peer)
			m.o.CacheSyncTimeout, m.o.ContinueWhenCacheNotReady = time.Millisecond, cont
			var listOK atomic.Bool
			cs.PrependReactor("list", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
				if listOK.Load() {
					return false, nil, nil // on to the tracker
				}
				return true, nil, apierrors.NewServiceUnavailable("overloaded")
			})
			timedOut := make(chan struct{})
			m.syncTimedOut = func() { close(timedOut) }
			ch := make(chan []subnet.Event, 1)
			errc := make(chan error, 1)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() { errc <- m.WatchLeases(ctx, ch) }()
			if !cont {
				select {
				case err := <-errc:
					if err == nil || !strings.Contains(err.Error(), "did not sync within 1ms") {
						t.Fatalf("WatchLeases = %v, want the sync timeout", err)
					}
				case b := <-ch:
					t.Fatalf("a snapshot %+v although no list succeeded", b)
				case <-time.After(10 * time.Second):
					t.Fatal("WatchLeases neither failed nor returned")
				}
				return
			}
			select {
			case <-timedOut:
			case err := <-errc:
				t.Fatalf("WatchLeases = %v, want it to wait on past the sync timeout", err)
			case <-time.After(10 * time.Second):
				t.Fatal("the sync timeout never passed")
			}
			listOK.Store(true)
			select {
			case snap := <-ch:
				if len(snap) != 1 || snap[0].Lease.Subnet.String() != "10.244.2.0/24" {
					t.Fatalf("snapshot %+v, want the peer n2", snap)
				}
			case err := <-errc:
				t.Fatalf("WatchLeases = %v after the list succeeded", err)
			case <-time.After(30 * time.Second):
				t.Fatal("no snapshot after the list succeeded")
			}
		})
	}
}
