package ruleset

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/knftables"

	"github.com/weftnet/weft/internal/policy"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// world: namespaces x and y (labelled ns=<name>), pods a and b in each (pod=<name>) with a named port "http"
// (TCP 8080); x/a and y/a run on this node. a dual-stack world gives each pod an IPv6 address too.
func world(dual bool) ([]*policy.Pod, policy.Namespaces) {
	var pods []*policy.Pod
	for i, n := range []string{"x", "y"} {
		for j, p := range []string{"a", "b"} {
			pod := &policy.Pod{Namespace: n, Name: p, Labels: map[string]string{"pod": p},
				IPs:   []netip.Addr{netip.AddrFrom4([4]byte{10, 244, byte(i), byte(j + 2)})},
				Ports: []policy.ContainerPort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 8080}}}
			if dual {
				pod.IPs = append(pod.IPs, netip.MustParseAddr(fmt.Sprintf("fd00:%d::%d", i, j+2)))
			}
			pods = append(pods, pod)
		}
	}
	ns := func(n string) (labels.Set, bool) {
		if n != "x" && n != "y" {
			return nil, false
		}
		return labels.Set{"ns": n}, true
	}
	return pods, ns
}

func local(p *policy.Pod) bool { return p.Name == "a" }

func compile(t testing.TB, nps ...*networkingv1.NetworkPolicy) []*policy.Policy {
	var out []*policy.Policy
	for _, np := range nps {
		p, err := policy.Compile(np)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func np(ns, name string, spec networkingv1.NetworkPolicySpec) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
}

func sel(k, v string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{k: v}}
}

func port(p intstr.IntOrString, proto corev1.Protocol, end int32) networkingv1.NetworkPolicyPort {
	out := networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &p}
	if end != 0 {
		out.EndPort = &end
	}
	return out
}

// representative are the policies of the golden files: default deny, selectors alone and combined, ipBlock
// with except, numbered, ranged and named ports, egress to a named port, SCTP.
func representative() []*networkingv1.NetworkPolicy {
	ingress := []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	egress := []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
	return []*networkingv1.NetworkPolicy{
		np("x", "default-deny", networkingv1.NetworkPolicySpec{PolicyTypes: ingress}),
		np("x", "web", networkingv1.NetworkPolicySpec{PodSelector: *sel("pod", "a"), PolicyTypes: ingress,
			Ingress: []networkingv1.NetworkPolicyIngressRule{
				{From: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("pod", "b")}, {NamespaceSelector: sel("ns", "y"), PodSelector: sel("pod", "a")}},
					Ports: []networkingv1.NetworkPolicyPort{port(intstr.FromInt32(80), corev1.ProtocolTCP, 0), port(intstr.FromString("http"), corev1.ProtocolTCP, 0)}},
				{From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "192.168.0.0/24", Except: []string{"192.168.0.128/25"}}}},
					Ports: []networkingv1.NetworkPolicyPort{port(intstr.FromInt32(9000), corev1.ProtocolUDP, 9010)}},
				{Ports: []networkingv1.NetworkPolicyPort{port(intstr.FromInt32(7000), corev1.ProtocolSCTP, 0)}}}}),
		np("y", "egress", networkingv1.NetworkPolicySpec{PolicyTypes: egress,
			Egress: []networkingv1.NetworkPolicyEgressRule{
				{To: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel("ns", "x")}}, Ports: []networkingv1.NetworkPolicyPort{port(intstr.FromString("http"), corev1.ProtocolTCP, 0)}},
				{To: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("pod", "b")}}}}}),
	}
}

func dump(t testing.TB, rs *Ruleset) string {
	fake := knftables.NewFake(knftables.InetFamily, Table)
	tx := fake.NewTransaction()
	Full(tx, rs)
	if err := fake.Run(context.Background(), tx); err != nil {
		t.Fatalf("%v\n%s", err, tx)
	}
	return fake.Dump()
}

func TestRenderGolden(t *testing.T) {
	for _, dual := range []bool{false, true} {
		name := "representative-ipv4.nft"
		if dual {
			name = "representative-dual.nft"
		}
		t.Run(name, func(t *testing.T) {
			pods, ns := world(dual)
			rs := Render(Input{Policies: compile(t, representative()...), Namespaces: ns, Pods: pods, Local: local, IPv6: dual})
			got := dump(t, rs)
			if len(rs.Unenforced) != 1 || !strings.Contains(rs.Unenforced[0], "x/web: SCTP") {
				t.Errorf("unenforced %q, want x/web's SCTP port", rs.Unenforced)
			}
			path := filepath.Join("testdata", name)
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("rendered table differs from %s (go test -update to accept):\n%s", path, got)
			}
		})
	}
}

// No policy, no pod chain: the table is its base alone, and a pod not on this node gets no chain.
func TestRenderNothingIsolated(t *testing.T) {
	pods, ns := world(false)
	rs := Render(Input{Policies: compile(t, np("y", "deny", networkingv1.NetworkPolicySpec{PodSelector: *sel("pod", "b")})),
		Namespaces: ns, Pods: pods, Local: local})
	if len(rs.Chains) != 0 || len(rs.Sets) != 0 || len(rs.Maps[MapIngress4]) != 0 {
		t.Errorf("y/b is isolated but not local: %+v", rs)
	}
}

// Diff from any ruleset to any other gives the table Full gives: random worlds of pods and policies changing.
func TestDiffEqualsFull(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	pool := representative()
	ingress := []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	pool = append(pool,
		np("y", "deny-b", networkingv1.NetworkPolicySpec{PodSelector: *sel("pod", "b"), PolicyTypes: ingress}),
		np("y", "from-x", networkingv1.NetworkPolicySpec{PolicyTypes: ingress, Ingress: []networkingv1.NetworkPolicyIngressRule{
			{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel("ns", "x")}}}}}))
	randomInput := func() Input {
		pods, ns := world(r.IntN(2) == 0)
		var keep []*policy.Pod
		for _, p := range pods {
			if r.IntN(4) != 0 {
				if r.IntN(3) == 0 {
					p.Labels = map[string]string{"pod": []string{"a", "b"}[r.IntN(2)]}
				}
				keep = append(keep, p)
			}
		}
		var nps []*networkingv1.NetworkPolicy
		for _, p := range pool {
			if r.IntN(2) == 0 {
				nps = append(nps, p)
			}
		}
		return Input{Policies: compile(t, nps...), Namespaces: ns, Pods: keep, Local: local, IPv6: true}
	}
	fake := knftables.NewFake(knftables.InetFamily, Table)
	prev := &Ruleset{}
	tx := fake.NewTransaction()
	Full(tx, prev)
	if err := fake.Run(context.Background(), tx); err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		rs := Render(randomInput())
		tx := fake.NewTransaction()
		Diff(tx, prev, rs)
		if err := fake.Run(context.Background(), tx); err != nil {
			t.Fatalf("step %d: %v\n%s", i, err, tx)
		}
		if got, want := normalElements(fake.Dump()), normalElements(dump(t, rs)); got != want {
			t.Fatalf("step %d: after Diff\n%s\nwant (Full)\n%s\ntx:\n%s", i, got, want, tx)
		}
		prev = rs
	}
}

// normalElements sorts a dump's element lines: a set's or map's elements have no order, a chain's rules do.
func normalElements(d string) string {
	var other, elems []string
	for _, l := range strings.Split(d, "\n") {
		if strings.HasPrefix(l, "add element ") {
			elems = append(elems, l)
		} else {
			other = append(other, l)
		}
	}
	slices.Sort(elems)
	return strings.Join(append(other, elems...), "\n")
}
