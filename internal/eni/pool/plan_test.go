package pool

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

// setWaiting makes n pods wait, as n Allocate calls that found nothing idle would.
func setWaiting(p *Pool, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range n {
		p.waiting[podKey{fmt.Sprintf("w%d", i), "eth0"}] = true
	}
}

func unusable(e ENI) ENI { e.Usable = false; return e }

func TestPlanGrow(t *testing.T) {
	small := testConfig()
	small.Limits = Limits{InstanceType: "ecs.t6", ENIs: 2, AddrsPerENI: 3}
	small3 := small
	small3.TargetIdle = 3
	for _, tc := range []struct {
		name    string
		cfg     *Config
		enis    []ENI
		waiting int
		assign  []Assign
		create  int
	}{
		{"no ENI: one new with the target (3 secondaries + primary)", nil, nil, 0, nil, 3},
		{"idle at the floor: nothing", nil, []ENI{eni(1, 2)}, 0, nil, 0},
		{"below the floor: back to the target on the ENI's room", nil, []ENI{eni(1, 1)}, 0, []Assign{{"eni-1", 3}}, 0},
		{"waiting pods: target plus them", nil, []ENI{eni(1, 3)}, 2, []Assign{{"eni-1", 3}}, 0},
		{"room first, then an ENI", nil, []ENI{eni(1, 28)}, 40, []Assign{{"eni-1", 2}}, 9},
		{"calls of at most 10", nil, []ENI{eni(1, 1)}, 24, []Assign{{"eni-1", 10}, {"eni-1", 10}, {"eni-1", 7}}, 0},
		{"the fullest ENI first", nil, []ENI{eni(1, 1), eni(2, 29), eni(3, 29)}, 60, []Assign{{"eni-2", 1}, {"eni-3", 1}, {"eni-1", 3}}, 0},
		{"an ENI being set up: its addresses are coming", nil, []ENI{unusable(eni(1, 4))}, 0, nil, 0},
		{"an ENI being set up: no second one", nil, []ENI{unusable(eni(1, 2))}, 3, nil, 0},
		{"an ENI being set up: room on the others still used", nil, []ENI{eni(1, 29), unusable(eni(2, 1))}, 30, []Assign{{"eni-1", 1}}, 0},
		{"every ENI slot taken", &small, []ENI{eni(1, 3), eni(2, 2)}, 5, []Assign{{"eni-2", 1}}, 0},
		{"one missing address still makes an ENI with one secondary", &small3, []ENI{eni(1, 3)}, 1, nil, 1},
		{"two missing: an ENI with one secondary", &small, []ENI{eni(1, 3)}, 1, nil, 1},
		{"bounded by the limit", &small, []ENI{eni(1, 3)}, 9, nil, 2},
		{"the ENI's own size bounds a new one", &small, nil, 9, nil, 2},
	} {
		cfg := testConfig()
		if tc.cfg != nil {
			cfg = *tc.cfg
		}
		p, _, _ := newPool(t, cfg)
		p.SetENIs(tc.enis)
		setWaiting(p, tc.waiting)
		pl := p.Plan()
		if !reflect.DeepEqual(pl.Assign, tc.assign) || pl.CreateENI != tc.create || pl.Unassign != nil {
			t.Errorf("%s: %+v, want assign %v create %d", tc.name, pl, tc.assign, tc.create)
		}
	}
}

func TestPlanHysteresis(t *testing.T) {
	for idle := 0; idle <= 12; idle++ {
		p, clk, _ := newPool(t, testConfig())
		if idle > 0 {
			p.SetENIs([]ENI{eni(1, idle)})
		}
		clk.Advance(time.Hour) // every reclaim due
		pl := p.Plan()
		grow := len(pl.Assign) > 0 || pl.CreateENI > 0
		shrink := len(pl.Unassign) > 0
		if grow != (idle < 2) || shrink != (idle > 8) {
			t.Errorf("idle %d: %+v, want growth only below 2 and release only above 8", idle, pl)
		}
		if shrink {
			n := 0
			for _, u := range pl.Unassign {
				n += len(u.IPs)
			}
			if want := min(idle-4, 5); n != want {
				t.Errorf("idle %d: releases %d, want %d (down to the target, at most the batch)", idle, n, want)
			}
		}
	}
}

func TestPlanReclaim(t *testing.T) {
	cfg := testConfig()
	draws := 0
	cfg.Rand = func() float64 { draws++; return 0.5 } // waits of 10m30s with the 0.1 jitter
	p, clk, _ := newPool(t, cfg)
	p.SetENIs([]ENI{eni(1, 3), eni(2, 10)}) // idle 13
	if draws != 13 {
		t.Fatalf("%d jitter draws, want one per new idle address", draws)
	}
	pl := p.Plan()
	if pl.Unassign != nil || !pl.NextCheck.Equal(t0.Add(10*time.Minute+30*time.Second)) {
		t.Fatalf("at once: %+v, want nothing released and a check when the jittered wait ends", pl)
	}
	clk.Advance(10 * time.Minute)
	if pl := p.Plan(); pl.Unassign != nil {
		t.Fatalf("after IdleReclaimAfter but within the jitter: %+v", pl)
	}
	clk.Advance(30 * time.Second)
	pl = p.Plan()
	// Down to the target (13 - 4 = 9) but at most 5; the emptiest ENI first; never a primary.
	want := []Unassign{{"eni-1", []netip.Addr{ip(1, 2), ip(1, 3)}}, {"eni-2", []netip.Addr{ip(2, 2), ip(2, 3), ip(2, 4)}}}
	if !reflect.DeepEqual(pl.Unassign, want) || !pl.NextCheck.IsZero() {
		t.Errorf("%+v, want %v and nothing further pending", pl, want)
	}
	if draws != 13 {
		t.Errorf("%d jitter draws: Plan must not redraw", draws)
	}
	// Degraded or pods waiting: none.
	p.SetDegraded(true, "throttled")
	if pl := p.Plan(); pl.Unassign != nil {
		t.Errorf("degraded: %+v", pl)
	}
	p.SetDegraded(false, "")
	setWaiting(p, 1)
	if pl := p.Plan(); pl.Unassign != nil {
		t.Errorf("a pod waiting: %+v", pl)
	}
}

func TestPlanReclaimSkipsHeld(t *testing.T) {
	cfg := testConfig()
	cfg.MinIdle, cfg.TargetIdle, cfg.MaxIdle, cfg.IdleReclaimAfter = 0, 1, 1, 0
	p, clk, _ := newPool(t, cfg)
	p.SetENIs([]ENI{eni(1, 6)})
	mustAllocate(t, p, pod(1)) // .1, the primary
	mustAllocate(t, p, pod(2)) // .2
	mustAllocate(t, p, pod(3)) // .3
	mustRelease(t, p, pod(3))  // .3 cools down
	if err := p.Quarantine(ip(1, 4), "host route"); err != nil {
		t.Fatal(err)
	}
	if err := p.BeginUnassign(Unassign{"eni-1", []netip.Addr{ip(1, 5)}}); err != nil {
		t.Fatal(err)
	}
	// Idle: .6 only.
	if pl := p.Plan(); pl.Unassign != nil || !pl.NextCheck.Equal(t0.Add(30*time.Second)) {
		t.Errorf("%+v, want nothing to release (one idle, the ceiling) and the cooldown's end", pl)
	}
	p.Unassigned("eni-1", []netip.Addr{ip(1, 5)}, fmt.Errorf("Throttling"))
	clk.Advance(30 * time.Second) // .3 idle again, .5 back
	pl := p.Plan()
	want := []Unassign{{"eni-1", []netip.Addr{ip(1, 5), ip(1, 6)}}} // idle longest first; .3 only since its cooldown ended
	if !reflect.DeepEqual(pl.Unassign, want) {
		t.Errorf("%+v, want %v", pl, want)
	}
}

func TestUnassign(t *testing.T) {
	p, _, _ := newPool(t, testConfig())
	p.SetENIs([]ENI{eni(1, 4)})
	mustAllocate(t, p, pod(1)) // the primary
	mustAllocate(t, p, pod(2)) // .2
	for _, tc := range []struct {
		u    Unassign
		want string
	}{
		{Unassign{"eni-9", []netip.Addr{ip(1, 3)}}, "no such ENI"},
		{Unassign{"eni-1", nil}, "no addresses"},
		{Unassign{"eni-1", []netip.Addr{ip(1, 3), ip(1, 3)}}, "listed twice"},
		{Unassign{"eni-1", []netip.Addr{ip(2, 3)}}, "not listed on it"},
		{Unassign{"eni-1", []netip.Addr{ip(1, 1)}}, "primary"},
		{Unassign{"eni-1", []netip.Addr{ip(1, 3), ip(1, 2)}}, "10.0.1.2 is no longer idle"},
	} {
		if err := p.BeginUnassign(tc.u); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.u, err, tc.want)
		}
	}
	if s := p.Stats(); s.Releasing != 0 || s.Idle != 2 {
		t.Fatalf("a refused BeginUnassign marked something: %+v", s)
	}
	if err := p.BeginUnassign(Unassign{"eni-1", []netip.Addr{ip(1, 3), ip(1, 4)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Allocate(pod(3)); err == nil {
		t.Error("a releasing address was handed out")
	}
	if s := p.Stats(); s.Releasing != 2 || s.Idle != 0 {
		t.Errorf("%+v", s)
	}
	p.Unassigned("eni-1", []netip.Addr{ip(1, 3)}, fmt.Errorf("Throttling"))
	p.Unassigned("eni-1", []netip.Addr{ip(1, 4)}, nil)
	if s := p.Stats(); s.Releasing != 0 || s.Idle != 1 {
		t.Errorf("%+v", s)
	}
	if a := mustAllocate(t, p, pod(3)); a.IP != ip(1, 3) || len(a.ENI.Addrs) != 3 {
		t.Errorf("got %s on %v", a.IP, a.ENI.Addrs)
	}
}

// The pool knows of a new ENI from Assigned before SetENIs lists it, and asks for no second one meanwhile.
func TestCreateENIOnce(t *testing.T) {
	p, _, _ := newPool(t, testConfig())
	if pl := p.Plan(); pl.CreateENI != 3 {
		t.Fatalf("%+v", pl)
	}
	p.Assigned("eni-1", []netip.Addr{ip(1, 1), ip(1, 2), ip(1, 3), ip(1, 4)})
	setWaiting(p, 10)
	if pl := p.Plan(); pl.CreateENI != 0 || pl.Assign != nil {
		t.Errorf("while the new ENI is set up: %+v", pl)
	}
	if _, err := p.Allocate(pod(1)); err == nil {
		t.Error("an address of an ENI not set up was handed out")
	}
	p.SetENIs([]ENI{unusable(eni(1, 4))})
	if pl := p.Plan(); pl.CreateENI != 0 || pl.Assign != nil {
		t.Errorf("listed, not usable: %+v", pl)
	}
	p.SetENIs([]ENI{eni(1, 4)})
	if pl := p.Plan(); pl.Assign == nil {
		t.Errorf("usable: %+v, want more addresses for the waiting pods", pl)
	}
	if a := mustAllocate(t, p, pod(1)); a.IP != ip(1, 1) {
		t.Errorf("got %s", a.IP)
	}
}
