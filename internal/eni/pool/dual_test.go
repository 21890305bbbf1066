package pool

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/weftnet/weft/internal/eni/checkpoint"
)

func ip6(n, i int) netip.Addr {
	return netip.MustParseAddr(fmt.Sprintf("2408:4005:300:a1%02x::%x", n, i))
}

// dualENI is eni(n, v4) with v6 IPv6 addresses.
func dualENI(n, v4, v6 int) ENI {
	e := eni(n, v4)
	for i := 1; i <= v6; i++ {
		e.IPv6 = append(e.IPv6, ip6(n, i))
	}
	return e
}

func dualConfig(v4, v6 int) Config {
	cfg := testConfig()
	cfg.Limits = Limits{InstanceType: "ecs.g7.large", ENIs: 2, AddrsPerENI: v4, IPv6PerENI: v6}
	return cfg
}

// Each allocation pairs an IPv4 and an IPv6 address of one ENI; the pair is recorded, cools down and comes back
// together; an ENI without a free IPv6 address gives no pod an address.
func TestDualPairing(t *testing.T) {
	p, clk, cp := newPool(t, dualConfig(6, 6))
	p.SetENIs([]ENI{dualENI(1, 3, 2), dualENI(2, 2, 0)})
	seen := map[netip.Addr]bool{}
	for i := range 2 {
		a := mustAllocate(t, p, pod(i))
		if !a.IPv6.Is6() || a.ENI.ID != "eni-1" || seen[a.IPv6] {
			t.Fatalf("pod %d: %+v, want a fresh IPv6 address of eni-1", i, a)
		}
		seen[a.IPv6] = true
		r, _ := p.Lookup(pod(i).ContainerID, "eth0")
		if r.IPv6 != a.IPv6 || r.IP != a.IP {
			t.Fatalf("record %+v, allocation %+v", r, a)
		}
		saved := cp.last.Records
		found := false
		for _, s := range saved {
			found = found || s.IP == a.IP && s.IPv6 == a.IPv6 && s.State == checkpoint.Assigned
		}
		if !found {
			t.Fatalf("the checkpoint lacks the pair %v/%v: %+v", a.IP, a.IPv6, saved)
		}
	}
	// eni-1 has an idle IPv4 address left, eni-2 two, but no IPv6 address is free: the pod waits.
	if _, err := p.Allocate(pod(9)); !errors.Is(err, ErrNoIdle) {
		t.Fatalf("no free IPv6: %v, want ErrNoIdle", err)
	}
	pl := p.Plan()
	want := map[string]int{"eni-1": 1, "eni-2": 2}
	for _, a := range pl.AssignIPv6 {
		if want[a.ENI] != a.N {
			t.Errorf("AssignIPv6 %+v, want %v", a, want)
		}
		delete(want, a.ENI)
	}
	if len(want) > 0 {
		t.Fatalf("plan %+v lacks IPv6 assigns %v", pl, want)
	}
	p.AssignedIPv6("eni-2", []netip.Addr{ip6(2, 1), ip6(2, 2)})
	a := mustAllocate(t, p, pod(9))
	if a.ENI.ID != "eni-2" || (a.IPv6 != ip6(2, 1) && a.IPv6 != ip6(2, 2)) {
		t.Fatalf("after the IPv6 assign: %+v", a)
	}
	// Released, the pair cools down together: the IPv6 address is not paired again meanwhile.
	old := mustAllocate(t, p, pod(0))
	mustRelease(t, p, pod(0))
	for _, r := range p.Records() {
		if r.IP == old.IP && (r.State != checkpoint.Cooldown || r.IPv6 != old.IPv6) {
			t.Fatalf("released record %+v, want Cooldown with %v", r, old.IPv6)
		}
	}
	b := mustAllocate(t, p, pod(10))
	if b.IPv6 == old.IPv6 {
		t.Fatalf("the cooling IPv6 address %v was paired again", old.IPv6)
	}
	clk.Advance(31 * 1e9)
	if f := p.Stats(); f.Cooldown != 0 {
		t.Fatalf("cooldown not over: %+v", f)
	}
}

// Capacity is (ENIs) x min(IPv4, IPv6) per ENI, and Plan grows no ENI's IPv4 addresses beyond what pairs.
func TestDualCapacity(t *testing.T) {
	p, _, _ := newPool(t, dualConfig(6, 4))
	if got := p.Stats().Capacity; got != 8 {
		t.Fatalf("capacity %d, want 2 x min(6, 4) = 8", got)
	}
	p.SetENIs([]ENI{dualENI(1, 4, 4)})
	for i := range 4 {
		mustAllocate(t, p, pod(i))
	}
	pl := p.Plan()
	for _, a := range pl.Assign {
		if a.ENI == "eni-1" {
			t.Fatalf("plan %+v grows eni-1 beyond the 4 pairs it can carry", pl)
		}
	}
	if pl.CreateENI == 0 || dualConfig(6, 4).Limits.NewENIIPv6(pl.CreateENI) != min(pl.CreateENI+1, 4) || (Limits{}).NewENIIPv6(3) != 0 {
		t.Fatalf("plan %+v: want a new ENI with as many IPv6 as IPv4 addresses (at most 4)", pl)
	}
	p.SetENIs([]ENI{dualENI(1, 4, 4), dualENI(2, 4, 4)})
	for i := 4; i < 8; i++ {
		mustAllocate(t, p, pod(i))
	}
	var le *LimitError
	if _, err := p.Allocate(pod(8)); !errors.As(err, &le) || !strings.Contains(err.Error(), "min(6 IPv4, 4 IPv6 addresses)") {
		t.Fatalf("at the dual-stack limit: %v", err)
	}
}

// With one IPv6 address per ENI, each ENI carries one pod: Plan creates ENIs with no secondary IPv4 address.
func TestDualOneIPv6PerENI(t *testing.T) {
	p, _, _ := newPool(t, dualConfig(20, 1))
	if pl := p.Plan(); !pl.CreateWhole || pl.CreateENI != 0 {
		t.Fatalf("plan %+v, want one ENI with its primary only", pl)
	}
	p.SetENIs([]ENI{dualENI(1, 1, 1)})
	mustAllocate(t, p, pod(1))
	if pl := p.Plan(); len(pl.Assign) != 0 || !pl.CreateWhole {
		t.Fatalf("plan %+v, want no IPv4 growth on eni-1 and another whole ENI", pl)
	}
}

// IPv6 addresses left over once IPv4 ones went are released; one being released is paired with no pod.
func TestDualSurplus(t *testing.T) {
	p, _, _ := newPool(t, dualConfig(6, 6))
	p.SetENIs([]ENI{dualENI(1, 2, 5)})
	pl := p.Plan()
	if len(pl.UnassignIPv6) != 1 || len(pl.UnassignIPv6[0].IPs) != 3 || pl.UnassignIPv6[0].IPs[0] != ip6(1, 3) {
		t.Fatalf("plan %+v, want the 3 highest IPv6 addresses of eni-1 released", pl)
	}
	if err := p.BeginUnassignIPv6(pl.UnassignIPv6[0]); err != nil {
		t.Fatal(err)
	}
	if err := p.BeginUnassignIPv6(pl.UnassignIPv6[0]); err == nil {
		t.Fatal("a second BeginUnassignIPv6 of the same addresses accepted")
	}
	for i := range 2 {
		if a := mustAllocate(t, p, pod(i)); a.IPv6 != ip6(1, i+1) {
			t.Fatalf("pod %d paired with %v", i, a.IPv6)
		}
	}
	p.UnassignedIPv6("eni-1", pl.UnassignIPv6[0].IPs, nil)
	if pl := p.Plan(); len(pl.UnassignIPv6)+len(pl.AssignIPv6) != 0 {
		t.Fatalf("after the release: %+v", pl)
	}
}

// IPv4-only pools are untouched: no IPv6 in allocations or plans even when the cloud lists some.
func TestDualOffIgnoresIPv6(t *testing.T) {
	p, _, _ := newPool(t, testConfig())
	p.SetENIs([]ENI{dualENI(1, 3, 3)})
	if a := mustAllocate(t, p, pod(1)); a.IPv6.IsValid() {
		t.Fatalf("IPv4-only allocation with %v", a.IPv6)
	}
	if pl := p.Plan(); len(pl.AssignIPv6)+len(pl.UnassignIPv6) != 0 {
		t.Fatalf("IPv4-only plan %+v", pl)
	}
}
