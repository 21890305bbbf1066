package pool

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// With Limits.Exclusive (one address per ENI, its primary) the pool plans whole ENIs without secondary
// addresses ahead of pods (one warm), never an Assign, hands each pod a whole ENI, refuses the pod beyond
// EniQuantity - 1 with a LimitError saying exclusive, never releases an idle ENI's primary, and gives a
// released ENI to the next pod after its cooldown.
func TestExclusivePool(t *testing.T) {
	cfg := testConfig()
	cfg.MinIdle, cfg.TargetIdle, cfg.MaxIdle = 1, 1, 1
	cfg.Limits = Limits{InstanceType: "ecs.e2e.eni3", ENIs: 2, AddrsPerENI: 1, Exclusive: true}
	p, clk, _ := newPool(t, cfg)
	plan := func(wantCreate bool) {
		t.Helper()
		pl := p.Plan()
		if pl.CreateWhole != wantCreate || pl.CreateENI != 0 || len(pl.Assign) != 0 || len(pl.Unassign) != 0 {
			t.Fatalf("plan %+v, want CreateWhole %v and nothing else", pl, wantCreate)
		}
	}
	plan(true) // one warm ENI ahead of any pod
	p.SetENIs([]ENI{{ID: "eni-1", MAC: "00:16:3e:00:00:01", VSwitchID: "vsw-1", Addrs: []netip.Addr{ip(1, 1)}}})
	plan(false) // being set up: no second create meanwhile
	p.SetENIs([]ENI{eni(1, 1)})
	plan(false) // one idle: the warm target
	a := mustAllocate(t, p, pod(1))
	if a.IP != ip(1, 1) || a.ENI.ID != "eni-1" {
		t.Fatalf("pod 1 got %+v, want the whole eni-1 (its primary)", a)
	}
	plan(true) // the next warm one
	p.SetENIs([]ENI{eni(1, 1), eni(2, 1)})
	plan(false) // at the limit: 2 ENIs, whatever the warm target
	mustAllocate(t, p, pod(2))
	plan(false)
	_, err := p.Allocate(pod(3))
	var le *LimitError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "exclusive ENI limit") || !strings.Contains(err.Error(), "holds 2 pods") {
		t.Fatalf("pod 3: %v, want the exclusive LimitError of 2", err)
	}
	mustRelease(t, p, pod(1))
	if _, err := p.Allocate(pod(3)); !errors.Is(err, ErrNoIdle) {
		t.Fatalf("pod 3 while eni-1 cools down: %v, want ErrNoIdle", err)
	}
	clk.Advance(cfg.Cooldown + time.Second)
	if a := mustAllocate(t, p, pod(3)); a.ENI.ID != "eni-1" {
		t.Fatalf("pod 3 after the cooldown: %+v, want eni-1", a)
	}
	mustRelease(t, p, pod(3))
	mustRelease(t, p, pod(2))
	clk.Advance(time.Hour)
	plan(false) // two idle above the ceiling of 1: an ENI's primary is never released
}
