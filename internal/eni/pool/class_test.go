package pool

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func classENI(n, count int, vsw string, sgs ...string) ENI {
	e := eni(n, count)
	e.VSwitchID, e.SecurityGroups = vsw, sgs
	return e
}

func classPod(n int, c Class) Pod {
	pd := pod(n)
	pd.Class = &c
	return pd
}

func TestClassMatchesAndKey(t *testing.T) {
	c := Class{VSwitches: []string{"vsw-b", "vsw-a"}, SecurityGroups: []string{"sg-2", "sg-1"}}
	e := ENI{VSwitchID: "vsw-a", SecurityGroups: []string{"sg-1", "sg-2"}}
	if !c.Matches(&e) {
		t.Fatal("same vSwitch, same groups in another order: want a match")
	}
	for _, bad := range []ENI{{VSwitchID: "vsw-c", SecurityGroups: []string{"sg-1", "sg-2"}}, {VSwitchID: "vsw-a", SecurityGroups: []string{"sg-1"}},
		{VSwitchID: "vsw-a", SecurityGroups: []string{"sg-1", "sg-2", "sg-3"}}} {
		if c.Matches(&bad) {
			t.Fatalf("%+v matches %v", bad, c)
		}
	}
	if !(Class{}).Matches(&e) {
		t.Fatal("the zero class matches every ENI")
	}
	if c.Key() != (Class{VSwitches: []string{"vsw-a", "vsw-b"}, SecurityGroups: []string{"sg-1", "sg-2"}}).Key() {
		t.Fatal("Key depends on the lists' order")
	}
}

// A pod of its own class is given only an address of an ENI of that class; while none has an idle one it waits,
// Plan assigns room on a usable ENI of the class, else creates one ENI of the class (Plan.Class); the default
// class's warm pool is not spent on it and the pod's class does not grow the warm pool.
func TestClassAllocateAndPlan(t *testing.T) {
	cfg := testConfig()
	cfg.MinIdle, cfg.TargetIdle, cfg.MaxIdle = 1, 2, 4
	cfg.Limits = Limits{InstanceType: "ecs.t", ENIs: 3, AddrsPerENI: 4}
	cfg.Default = Class{VSwitches: []string{"vsw-1", "vsw-2"}, SecurityGroups: []string{"sg-a"}}
	p, _, _ := newPool(t, cfg)
	p.SetENIs([]ENI{classENI(1, 3, "vsw-1", "sg-a")})
	own := Class{VSwitches: []string{"vsw-2"}, SecurityGroups: []string{"sg-b", "sg-a"}}
	if _, err := p.Allocate(classPod(1, own)); !errors.Is(err, ErrNoIdle) {
		t.Fatalf("own class with only default ENIs: %v, want ErrNoIdle", err)
	}
	pl := p.Plan()
	if pl.CreateENI != 1 || pl.Class == nil || pl.Class.Key() != own.Key() || len(pl.Assign) != 0 {
		t.Fatalf("plan %+v (class %v), want one ENI of %v with 1 secondary and no assign to the default ENI", pl, pl.Class, own)
	}
	p.SetENIs([]ENI{classENI(1, 3, "vsw-1", "sg-a"), {ID: "eni-2", VSwitchID: "vsw-2", SecurityGroups: []string{"sg-a", "sg-b"}, Addrs: []netip.Addr{ip(2, 1), ip(2, 2)}}})
	if pl := p.Plan(); pl.CreateENI != 0 || len(pl.Assign) != 0 {
		t.Fatalf("plan while the class's ENI is set up: %+v, want nothing", pl)
	}
	p.SetENIs([]ENI{classENI(1, 3, "vsw-1", "sg-a"), classENI(2, 2, "vsw-2", "sg-b", "sg-a")})
	a := mustAllocate(t, p, classPod(1, own))
	if a.ENI.ID != "eni-2" {
		t.Fatalf("own-class pod got %+v, want eni-2", a)
	}
	mustAllocate(t, p, classPod(2, own))
	d := mustAllocate(t, p, pod(3))
	if d.ENI.ID != "eni-1" {
		t.Fatalf("default pod got %+v, want the default ENI eni-1", d)
	}
	// A third own-class pod: room on eni-2 (2 of 4): an Assign there, not on eni-1.
	if _, err := p.Allocate(classPod(4, own)); !errors.Is(err, ErrNoIdle) {
		t.Fatalf("third own-class pod: %v, want ErrNoIdle", err)
	}
	pl = p.Plan()
	if len(pl.Assign) != 1 || pl.Assign[0] != (Assign{ENI: "eni-2", N: 1}) || pl.CreateENI != 0 {
		t.Fatalf("plan %+v, want one address assigned to eni-2", pl)
	}
}

// A pod whose class has no ENI with room when the node has no ENI slot left gets a LimitError naming its class,
// while the node's address limit is far off; a default pod on the same node is unaffected.
func TestClassLimit(t *testing.T) {
	cfg := testConfig()
	cfg.MinIdle, cfg.TargetIdle, cfg.MaxIdle = 1, 1, 4
	cfg.Limits = Limits{InstanceType: "ecs.t", ENIs: 2, AddrsPerENI: 2}
	cfg.Default = Class{VSwitches: []string{"vsw-1"}, SecurityGroups: []string{"sg-a"}}
	p, _, _ := newPool(t, cfg)
	p.SetENIs([]ENI{classENI(1, 2, "vsw-1", "sg-a"), classENI(2, 2, "vsw-1", "sg-b")})
	other := Class{VSwitches: []string{"vsw-1"}, SecurityGroups: []string{"sg-c"}}
	_, err := p.Allocate(classPod(1, other))
	var le *LimitError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "sg-c") || !strings.Contains(err.Error(), "ENI limit for the pod's class") {
		t.Fatalf("class with no ENI and no slot: %v, want the class's LimitError", err)
	}
	if a := mustAllocate(t, p, pod(2)); a.ENI.ID != "eni-1" {
		t.Fatalf("default pod: %+v, want eni-1", a)
	}
	sgb := Class{VSwitches: []string{"vsw-1"}, SecurityGroups: []string{"sg-b"}}
	mustAllocate(t, p, classPod(3, sgb))
	mustAllocate(t, p, classPod(4, sgb))
	if _, err := p.Allocate(classPod(5, sgb)); !errors.As(err, &le) {
		t.Fatalf("sg-b class with its ENI full and no slot: %v, want a LimitError", err)
	}
	mustRelease(t, p, classPod(3, sgb))
	if _, err := p.Allocate(classPod(5, sgb)); !errors.Is(err, ErrNoIdle) {
		t.Fatalf("sg-b class while an address of its ENI cools down: %v, want ErrNoIdle (it is idle again soon)", err)
	}
}

// Idle addresses of ENIs not of the default class are released once their reclaim time has passed (never the
// primary), whatever the default class's ceiling; the default class's are kept within it.
func TestClassReclaim(t *testing.T) {
	cfg := testConfig()
	cfg.MinIdle, cfg.TargetIdle, cfg.MaxIdle = 1, 2, 8
	cfg.Limits = Limits{InstanceType: "ecs.t", ENIs: 3, AddrsPerENI: 4}
	cfg.Default = Class{SecurityGroups: []string{"sg-a"}}
	p, clk, _ := newPool(t, cfg)
	p.SetENIs([]ENI{classENI(1, 3, "vsw-1", "sg-a"), classENI(2, 3, "vsw-1", "sg-b")})
	if pl := p.Plan(); len(pl.Unassign) != 0 || pl.NextCheck.IsZero() {
		t.Fatalf("plan %+v, want nothing released yet and a next check", pl)
	}
	clk.Advance(cfg.IdleReclaimAfter + time.Second)
	pl := p.Plan()
	if len(pl.Unassign) != 1 || pl.Unassign[0].ENI != "eni-2" || len(pl.Unassign[0].IPs) != 2 || pl.Unassign[0].IPs[0] != ip(2, 2) {
		t.Fatalf("plan %+v, want eni-2's two secondary addresses released, eni-1's kept", pl)
	}
}

// Exclusive mode: a pod of its own class gets a whole ENI of that class, created for it (CreateWhole with
// Plan.Class), never the default class's warm ENI; with no ENI slot left, the class's LimitError.
func TestClassExclusive(t *testing.T) {
	cfg := testConfig()
	cfg.MinIdle, cfg.TargetIdle, cfg.MaxIdle = 1, 1, 1
	cfg.Limits = Limits{InstanceType: "ecs.e2e.eni3", ENIs: 2, AddrsPerENI: 1, Exclusive: true}
	cfg.Default = Class{SecurityGroups: []string{"sg-a"}}
	p, _, _ := newPool(t, cfg)
	p.SetENIs([]ENI{classENI(1, 1, "vsw-1", "sg-a")})
	own := Class{VSwitches: []string{"vsw-2"}, SecurityGroups: []string{"sg-b"}}
	if _, err := p.Allocate(classPod(1, own)); !errors.Is(err, ErrNoIdle) {
		t.Fatalf("own class beside a warm default ENI: %v, want ErrNoIdle", err)
	}
	pl := p.Plan()
	if !pl.CreateWhole || pl.CreateENI != 0 || pl.Class == nil || pl.Class.Key() != own.Key() {
		t.Fatalf("plan %+v (class %v), want one whole ENI of %v", pl, pl.Class, own)
	}
	p.SetENIs([]ENI{classENI(1, 1, "vsw-1", "sg-a"), classENI(2, 1, "vsw-2", "sg-b")})
	if a := mustAllocate(t, p, classPod(1, own)); a.ENI.ID != "eni-2" || a.IP != ip(2, 1) {
		t.Fatalf("own-class pod got %+v, want the whole eni-2", a)
	}
	_, err := p.Allocate(classPod(2, Class{SecurityGroups: []string{"sg-c"}}))
	var le *LimitError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "sg-c") {
		t.Fatalf("a third class with both ENI slots taken: %v, want its LimitError", err)
	}
	if a := mustAllocate(t, p, pod(3)); a.ENI.ID != "eni-1" {
		t.Fatalf("default pod got %+v, want the warm eni-1", a)
	}
}
