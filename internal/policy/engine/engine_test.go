package engine

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/knftables"

	"github.com/weftnet/weft/internal/policy"
	"github.com/weftnet/weft/internal/policy/ruleset"
)

// countingKernel is knftables' Fake counting the transactions run, failing them while fail is set.
type countingKernel struct {
	*knftables.Fake
	runs atomic.Int32
	fail atomic.Bool
}

func (k *countingKernel) Run(ctx context.Context, tx *knftables.Transaction) error {
	k.runs.Add(1)
	if k.fail.Load() {
		return errors.New("nft: Operation not permitted")
	}
	return k.Fake.Run(ctx, tx)
}

func newKernel() *countingKernel {
	return &countingKernel{Fake: knftables.NewFake(knftables.InetFamily, ruleset.Table)}
}

func start(t *testing.T, k Kernel, cfg Config) *Engine {
	t.Helper()
	cfg.Node = "n1"
	e := New(cfg, k)
	e.Informed()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = e.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return e
}

func pod(ns, name, ip string, l map[string]string) *policy.Pod {
	return &policy.Pod{Namespace: ns, Name: name, Labels: l, IPs: []netip.Addr{netip.MustParseAddr(ip)}}
}

func denyAll(t *testing.T, ns string) *policy.Policy {
	p, err := policy.Compile(&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "deny"},
		Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// A local pod under a default-deny gets its chain and map entries before Ensure returns; a remote one does not.
func TestEnsureWaitsForTheKernel(t *testing.T) {
	k := newKernel()
	e := start(t, k, Config{})
	e.SetNamespace("x", labels.Set{"ns": "x"})
	e.SetPolicy("x", "deny", denyAll(t, "x"), nil)
	e.SetPod(pod("x", "a", "10.244.0.2", nil), "n1")
	e.SetPod(pod("x", "b", "10.244.1.2", nil), "n2")
	if err := e.Ensure(ctxT(t), "x", "a", []netip.Addr{netip.MustParseAddr("10.244.0.7")}); err != nil {
		t.Fatal(err)
	}
	d := k.Dump()
	if !strings.Contains(d, "add element inet weft-policy ingress4 { 10.244.0.7 : goto ing-") || strings.Contains(d, "10.244.1.2 :") ||
		strings.Contains(d, "10.244.0.2 :") {
		t.Errorf("after Ensure the kernel holds:\n%s", d)
	}
	if err := e.Ensure(ctxT(t), "x", "nobody", nil); err == nil || !strings.Contains(err.Error(), "pod x/nobody is not known yet") {
		t.Errorf("Ensure of an unknown pod: %v", err)
	}
}

// A burst of changes is one or a few transactions, not one per change.
func TestBurstCoalesced(t *testing.T) {
	k := newKernel()
	e := start(t, k, Config{Window: 50 * time.Millisecond})
	e.SetPolicy("x", "deny", denyAll(t, "x"), nil)
	for i := range 200 {
		e.SetPod(pod("x", "p"+string(rune('a'+i%26))+string(rune('a'+i/26)), netip.AddrFrom4([4]byte{10, 244, 0, byte(i)}).String(), nil), "n1")
	}
	if err := e.Ensure(ctxT(t), "x", "paa", []netip.Addr{netip.MustParseAddr("10.244.0.0")}); err != nil {
		t.Fatal(err)
	}
	if n := k.runs.Load(); n > 5 {
		t.Errorf("%d transactions for 201 changes, want a handful", n)
	}
	if c := strings.Count(k.Dump(), "add element inet weft-policy ingress4"); c != 200 {
		t.Errorf("%d pods dispatched, want 200", c)
	}
}

// A deleted table is restored by the periodic check; a failing kernel keeps Ensure waiting, and its error names
// the failure; the next success answers.
func TestDriftAndFailure(t *testing.T) {
	k := newKernel()
	e := start(t, k, Config{Check: 50 * time.Millisecond})
	e.SetPolicy("x", "deny", denyAll(t, "x"), nil)
	e.SetPod(pod("x", "a", "10.244.0.2", nil), "n1")
	if err := e.Ensure(ctxT(t), "x", "a", []netip.Addr{netip.MustParseAddr("10.244.0.2")}); err != nil {
		t.Fatal(err)
	}
	want := k.Dump()
	tx := k.NewTransaction()
	tx.Delete(&knftables.Table{})
	if err := k.Fake.Run(context.Background(), tx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for k.Dump() != want && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := k.Dump(); got != want {
		t.Fatalf("the deleted table was not restored:\n%s", got)
	}

	k.fail.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err := e.Ensure(ctx, "x", "a", []netip.Addr{netip.MustParseAddr("10.244.0.3")})
	if err == nil || !strings.Contains(err.Error(), "Operation not permitted") {
		t.Fatalf("Ensure while the kernel refuses: %v", err)
	}
	if p := e.Problems(); len(p) == 0 || !strings.Contains(p[len(p)-1], "the last sync failed") {
		t.Errorf("problems %q", p)
	}
	k.fail.Store(false)
	if err := e.Ensure(ctxT(t), "x", "a", []netip.Addr{netip.MustParseAddr("10.244.0.3")}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(k.Dump(), "10.244.0.3 : goto") {
		t.Errorf("after recovery:\n%s", k.Dump())
	}
}

// A policy that does not compile is reported and left out; a pod deleted loses its chain.
func TestProblemsAndDeletion(t *testing.T) {
	k := newKernel()
	e := start(t, k, Config{})
	e.SetPolicy("x", "bad", nil, errors.New("NetworkPolicy x/bad: spec.ingress[0].ports[0].port: 0: expected 1..65535"))
	e.SetPolicy("x", "deny", denyAll(t, "x"), nil)
	e.SetPod(pod("x", "a", "10.244.0.2", nil), "n1")
	e.SetPod(pod("x", "b", "10.244.0.3", nil), "n1")
	if err := e.Ensure(ctxT(t), "x", "b", []netip.Addr{netip.MustParseAddr("10.244.0.3")}); err != nil {
		t.Fatal(err)
	}
	if p := e.Problems(); len(p) != 1 || !strings.Contains(p[0], "x/bad: spec.ingress[0]") {
		t.Errorf("problems %q", p)
	}
	e.DeletePod("x", "a")
	if err := e.Ensure(ctxT(t), "x", "b", []netip.Addr{netip.MustParseAddr("10.244.0.3")}); err != nil {
		t.Fatal(err)
	}
	if d := k.Dump(); strings.Contains(d, "10.244.0.2") || strings.Count(d, "add chain inet weft-policy ing-") != 1 {
		t.Errorf("after deleting x/a:\n%s", d)
	}
	e.DeletePolicy("x", "deny")
	if err := e.Ensure(ctxT(t), "x", "b", []netip.Addr{netip.MustParseAddr("10.244.0.3")}); err != nil {
		t.Fatal(err)
	}
	if d := k.Dump(); strings.Contains(d, "add chain inet weft-policy ing-") {
		t.Errorf("no policy left, chains remain:\n%s", d)
	}
}

// A pod the informer has not delivered is read from the API; one the API does not know is ErrNoSuchPod.
func TestEnsureReadsUnknownPods(t *testing.T) {
	k := newKernel()
	gets := 0
	e := start(t, k, Config{Get: func(_ context.Context, ns, name string) (*policy.Pod, string, error) {
		gets++
		if name == "ghost" {
			return nil, "", ErrNoSuchPod
		}
		return pod(ns, name, "10.244.0.9", nil), "n1", nil
	}})
	e.SetPolicy("x", "deny", denyAll(t, "x"), nil)
	if err := e.Ensure(ctxT(t), "x", "late", []netip.Addr{netip.MustParseAddr("10.244.0.9")}); err != nil || gets != 1 {
		t.Fatalf("Ensure of a pod the informer has not delivered: %v (%d gets)", err, gets)
	}
	if !strings.Contains(k.Dump(), "10.244.0.9 : goto ing-") {
		t.Errorf("the late pod is not isolated:\n%s", k.Dump())
	}
	if err := e.Ensure(ctxT(t), "x", "ghost", []netip.Addr{netip.MustParseAddr("10.244.0.10")}); !errors.Is(err, ErrNoSuchPod) {
		t.Errorf("Ensure of a pod the API does not know: %v", err)
	}
}

// Before the informers have synced, Ensure does not answer: a pod checked against a partial view could go out
// unprotected.
func TestEnsureWaitsForTheInformers(t *testing.T) {
	e := New(Config{Node: "n1"}, newKernel())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = e.Run(ctx) }()
	e.SetPod(pod("x", "a", "10.244.0.2", nil), "n1")
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelShort()
	if err := e.Ensure(short, "x", "a", []netip.Addr{netip.MustParseAddr("10.244.0.2")}); err == nil || !strings.Contains(err.Error(), "informers have not synced yet") {
		t.Fatalf("Ensure before the informers synced: %v", err)
	}
	e.Informed()
	if err := e.Ensure(ctxT(t), "x", "a", []netip.Addr{netip.MustParseAddr("10.244.0.2")}); err != nil {
		t.Fatal(err)
	}
}
