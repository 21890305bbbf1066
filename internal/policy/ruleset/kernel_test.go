package ruleset

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/knftables"

	"github.com/weftnet/weft/internal/nsutil"
	"github.com/weftnet/weft/internal/policy"
	"github.com/weftnet/weft/internal/testenv"
)

// A node namespace routing between three pod namespaces (veth pairs, /32 routes), the rendered table loaded into
// the node's kernel, real TCP connections probed: the node's forward hook enforces what Evaluate decides.
func TestKernelEnforces(t *testing.T) {
	node, nh := testenv.NewNetns(t)
	testenv.InNetns(t, node, func() {
		if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	type podNS struct {
		pod *policy.Pod
		ns  netns.NsHandle
	}
	var pods []podNS
	for i, name := range []string{"a", "b", "c"} {
		ip := netip.AddrFrom4([4]byte{10, 244, 0, byte(i + 2)})
		ns, ph := testenv.NewNetns(t)
		host, peer := "veth"+name, "eth0"
		if err := nh.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: host, TxQLen: -1}, PeerName: peer, PeerNamespace: netlink.NsFd(ns)}); err != nil {
			t.Fatal(err)
		}
		hl, _ := nh.LinkByName(host)
		pl, _ := ph.LinkByName(peer)
		must(t, nh.LinkSetUp(hl), ph.LinkSetUp(pl),
			nh.AddrAdd(hl, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(169, 254, 1, 1), Mask: net.CIDRMask(32, 32)}}),
			nh.RouteAdd(&netlink.Route{LinkIndex: hl.Attrs().Index, Dst: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(32, 32)}, Scope: netlink.SCOPE_LINK}),
			ph.AddrAdd(pl, &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(32, 32)}}),
			ph.RouteAdd(&netlink.Route{LinkIndex: pl.Attrs().Index, Dst: &net.IPNet{IP: net.IPv4(169, 254, 1, 1), Mask: net.CIDRMask(32, 32)}, Scope: netlink.SCOPE_LINK}),
			ph.RouteAdd(&netlink.Route{LinkIndex: pl.Attrs().Index, Gw: net.IPv4(169, 254, 1, 1)}))
		pods = append(pods, podNS{&policy.Pod{Namespace: "x", Name: name, Labels: map[string]string{"pod": name}, IPs: []netip.Addr{ip},
			Ports: []policy.ContainerPort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 8080}}}, ns})
	}
	for _, p := range pods {
		for _, port := range []int{80, 8080} {
			var l net.Listener
			testenv.InNetns(t, p.ns, func() {
				var err error
				if l, err = net.Listen("tcp", fmt.Sprintf("%s:%d", p.pod.IPs[0], port)); err != nil {
					t.Fatal(err)
				}
			})
			t.Cleanup(func() { l.Close() })
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					c.Close()
				}
			}()
		}
	}
	// x/a admits pod=b on port 80 and its named port http; x/c may send only to x/a.
	ingress, egress := []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}, []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
	nps := compile(t,
		np("x", "a", networkingv1.NetworkPolicySpec{PodSelector: *sel("pod", "a"), PolicyTypes: ingress,
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("pod", "b")}},
				Ports: []networkingv1.NetworkPolicyPort{port(intstr.FromInt32(80), corev1.ProtocolTCP, 0), port(intstr.FromString("http"), corev1.ProtocolTCP, 0)}}}}),
		np("x", "c", networkingv1.NetworkPolicySpec{PodSelector: *sel("pod", "c"), PolicyTypes: egress,
			Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("pod", "a")}}}}}))
	var all []*policy.Pod
	for _, p := range pods {
		all = append(all, p.pod)
	}
	nsLabels := func(n string) (labels.Set, bool) { return labels.Set{"ns": n}, n == "x" }
	rs := Render(Input{Policies: nps, Namespaces: nsLabels, Pods: all, Local: func(*policy.Pod) bool { return true }})
	testenv.InNetns(t, node, func() {
		nft, err := knftables.New(knftables.InetFamily, Table)
		if err != nil {
			t.Fatal(err)
		}
		tx := nft.NewTransaction()
		Full(tx, rs)
		if err := nft.Run(context.Background(), tx); err != nil {
			t.Fatalf("load the ruleset: %v\n%s", err, tx)
		}
	})
	for _, s := range pods {
		for _, d := range pods {
			if s.pod == d.pod {
				continue
			}
			for _, port := range []int32{80, 8080} {
				want := policy.Evaluate(nps, nsLabels, policy.Conn{Src: policy.Endpoint{Pod: s.pod, IP: s.pod.IPs[0]},
					Dst: policy.Endpoint{Pod: d.pod, IP: d.pod.IPs[0]}, Protocol: corev1.ProtocolTCP, Port: port}).Allowed()
				var err error
				_ = nsutil.Do(s.ns, func() error {
					c, derr := net.DialTimeout("tcp", fmt.Sprintf("%s:%d", d.pod.IPs[0], port), 700*time.Millisecond)
					if derr == nil {
						c.Close()
					}
					err = derr
					return nil
				})
				if got := err == nil; got != want {
					t.Errorf("%s -> %s:%d: connected %v (%v), evaluator says allowed %v", s.pod.Ref(), d.pod.Ref(), port, got, err, want)
				}
			}
		}
	}
}

func must(t *testing.T, errs ...error) {
	t.Helper()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}
