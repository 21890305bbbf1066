package pool

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/cloud/instancetype"
	"github.com/weftnet/weft/internal/eni/checkpoint"
)

func TestValidate(t *testing.T) {
	if err := testConfig().Validate(); err != nil {
		t.Fatalf("the test config: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string // "": valid
	}{
		{"min 0 target 1 max 1", func(c *Config) { c.MinIdle, c.TargetIdle, c.MaxIdle = 0, 1, 1 }, ""},
		{"negative floor", func(c *Config) { c.MinIdle = -1 }, "min_pool_size: -1"},
		{"zero warm target", func(c *Config) { c.MinIdle, c.TargetIdle = 0, 0 }, "warm_pool_target: 0, want at least 1"},
		{"target below floor", func(c *Config) { c.MinIdle, c.TargetIdle = 5, 4 }, "warm_pool_target: 4, want at least 5"},
		{"ceiling below target", func(c *Config) { c.MaxIdle = 3 }, "max_pool_size: 3, want at least warm_pool_target (4)"},
		{"short cooldown", func(c *Config) { c.Cooldown = 29 * time.Second }, "cooldown: 29s, want at least 30s"},
		{"cooldown 30s", func(c *Config) { c.Cooldown = 30 * time.Second }, ""},
		{"negative reclaim", func(c *Config) { c.IdleReclaimAfter = -time.Second }, "idle_ip_reclaim_after: -1s"},
		{"reclaim at once", func(c *Config) { c.IdleReclaimAfter = 0 }, ""},
		{"zero batch", func(c *Config) { c.ReclaimBatch = 0 }, "idle_ip_reclaim_batch_size: 0"},
		{"jitter above 1", func(c *Config) { c.ReclaimJitter = 1.5 }, "idle_ip_reclaim_jitter_factor: 1.5"},
		{"negative jitter", func(c *Config) { c.ReclaimJitter = -0.1 }, "idle_ip_reclaim_jitter_factor: -0.1"},
		{"NaN jitter", func(c *Config) { c.ReclaimJitter = math.NaN() }, "idle_ip_reclaim_jitter_factor: NaN"},
		{"jitter 1", func(c *Config) { c.ReclaimJitter = 1 }, ""},
		{"no ENIs", func(c *Config) { c.Limits.ENIs = 0 }, "limits: 0 secondary ENIs for ecs.c7.4xlarge"},
		{"no addresses", func(c *Config) { c.Limits.AddrsPerENI = 0 }, "limits: 0 addresses per ENI"},
		{"no type", func(c *Config) { c.Limits.InstanceType = "" }, "limits: the instance type is empty"},
		{"no instance", func(c *Config) { c.Instance = "" }, "instance: empty"},
	} {
		c := testConfig()
		tc.edit(&c)
		err := c.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
		if _, nerr := New(c, newClock(), &fakeCP{}, nil); (nerr == nil) != (tc.want == "") {
			t.Errorf("%s: New: %v", tc.name, nerr)
		}
	}
	// Every problem at once.
	err := Config{}.Validate()
	for _, key := range []string{"warm_pool_target", "cooldown", "idle_ip_reclaim_batch_size", "limits", "instance"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("zero config: %v, want it to name %s", err, key)
		}
	}
}

func TestLimitErrorMessage(t *testing.T) {
	l := Limits{InstanceType: "ecs.c7.4xlarge", ENIs: 7, AddrsPerENI: 30}
	if l.Pods() != 210 {
		t.Fatalf("Pods %d, want 210", l.Pods())
	}
	want := "node is at its pod address limit: ecs.c7.4xlarge holds 210 pods on shared ENIs ((8 ENIs - the primary) x 30 addresses); 210 in use"
	if got := (&LimitError{Limits: l, InUse: 210}).Error(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// At the limit Allocate says so; quarantined addresses still listed on an ENI take their slot, vanished ones do not.
func TestLimit(t *testing.T) {
	cfg := testConfig()
	cfg.Limits = Limits{InstanceType: "ecs.t6-c1m1.large", ENIs: 1, AddrsPerENI: 3}
	for _, tc := range []struct {
		name     string
		restored []checkpoint.Record
		pods     int // allocations that succeed
	}{
		{"empty", nil, 3},
		{"one quarantined on the ENI", []checkpoint.Record{{IP: ip(1, 2), ENI: "eni-1", State: checkpoint.Quarantined, Reason: "host route"}}, 2},
		{"one quarantined elsewhere", []checkpoint.Record{{IP: ip(9, 9), State: checkpoint.Quarantined, Reason: "gone"}}, 3},
	} {
		p, _, _ := newPool(t, cfg, tc.restored...)
		p.SetENIs([]ENI{eni(1, 3)})
		for i := range tc.pods {
			mustAllocate(t, p, pod(i))
		}
		_, err := p.Allocate(pod(99))
		var le *LimitError
		if !errors.As(err, &le) || le.InUse != 3 || le.Limits != cfg.Limits {
			t.Errorf("%s: %v, want a LimitError with 3 in use", tc.name, err)
		}
		if s := p.Stats(); s.Waiting != 0 || s.Capacity != 3 {
			t.Errorf("%s: %+v, want no waiting pod at the limit and capacity 3", tc.name, s)
		}
	}
}

func TestAllocatePicks(t *testing.T) {
	for _, tc := range []struct {
		name   string
		enis   []ENI
		before func(*Pool, *fakeClock)
		want   netip.Addr
	}{
		{"primary first", []ENI{eni(1, 4)}, nil, ip(1, 1)},
		{"fewest idle ENI first", []ENI{eni(1, 4), eni(2, 2)}, nil, ip(2, 1)},
		{"ties: lower ENI id", []ENI{eni(2, 3), eni(1, 3)}, nil, ip(1, 1)},
		{"unusable ENI never", []ENI{eni(1, 4), func() ENI { e := eni(2, 2); e.Usable = false; return e }()}, nil, ip(1, 1)},
		{"then the address idle longest", []ENI{eni(1, 2)}, func(p *Pool, c *fakeClock) {
			mustAllocate(t, p, pod(1)) // the primary
			c.Advance(time.Minute)
			p.Assigned("eni-1", []netip.Addr{ip(1, 200), ip(1, 100)})
		}, ip(1, 2)},
		{"ties: the lowest address", []ENI{eni(1, 1)}, func(p *Pool, c *fakeClock) {
			mustAllocate(t, p, pod(1))
			p.Assigned("eni-1", []netip.Addr{ip(1, 200), ip(1, 100)})
		}, ip(1, 100)},
		{"a cooled down address after older idle ones", []ENI{eni(1, 3)}, func(p *Pool, c *fakeClock) {
			mustAllocate(t, p, pod(1))
			mustAllocate(t, p, pod(2)) // 10.0.1.2
			mustRelease(t, p, pod(2))
			c.Advance(time.Hour)
		}, ip(1, 3)},
	} {
		p, clk, _ := newPool(t, testConfig())
		p.SetENIs(tc.enis)
		if tc.before != nil {
			tc.before(p, clk)
		}
		if a := mustAllocate(t, p, pod(50)); a.IP != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, a.IP, tc.want)
		}
	}
}

func TestAllocateCheckpointsFirst(t *testing.T) {
	p, clk, cp := newPool(t, testConfig())
	p.SetENIs([]ENI{eni(1, 3)})
	a := mustAllocate(t, p, pod(1))
	n, f := cp.saved()
	want := checkpoint.Record{ContainerID: "c1", Netns: "/var/run/netns/p1", IfName: "eth0", PodNamespace: "default", PodName: "p1",
		IP: a.IP, ENI: "eni-1", State: checkpoint.Assigned, AssignedAt: clk.Now()}
	if n != 1 || f.Version != checkpoint.Version || f.Instance != "i-test" || !slices.Equal(f.Records, []checkpoint.Record{want}) {
		t.Fatalf("saved %d times: %+v, want one save of %+v", n, f, want)
	}
	if a.ENI.ID != "eni-1" || a.ENI.MAC != "00:16:3e:00:00:01" || len(a.ENI.Addrs) != 3 {
		t.Errorf("allocation ENI %+v", a.ENI)
	}
	// An ADD retry: the same allocation, no new record, no new save, even with another netns.
	retry := pod(1)
	retry.Netns = "/other"
	if b := mustAllocate(t, p, retry); b.IP != a.IP || b.ENI.ID != a.ENI.ID {
		t.Errorf("retry got %s, want %s", b.IP, a.IP)
	}
	if n, _ := cp.saved(); n != 1 || p.Stats().Assigned != 1 {
		t.Errorf("retry: %d saves, %+v", n, p.Stats())
	}
	a.ENI.Addrs[0] = netip.Addr{} // the caller's copy is its own
	if b := mustAllocate(t, p, pod(1)); b.ENI.Addrs[0] != ip(1, 1) {
		t.Errorf("the allocation shares the pool's address slice")
	}
}

func TestAllocateSaveFails(t *testing.T) {
	p, clk, cp := newPool(t, testConfig())
	p.SetENIs([]ENI{eni(1, 3)})
	clk.Advance(time.Minute)
	before := p.Stats()
	cp.setFail(true)
	if _, err := p.Allocate(pod(1)); !errors.Is(err, errDisk) {
		t.Fatalf("got %v, want the save's error", err)
	}
	if s := p.Stats(); s != before || len(p.Records()) != 0 {
		t.Errorf("after the failed save: %+v, %v; want %+v and no record", s, p.Records(), before)
	}
	if _, ok := p.Lookup("c1", "eth0"); ok {
		t.Error("the failed allocation is still looked up")
	}
	cp.setFail(false)
	if a := mustAllocate(t, p, pod(1)); a.IP != ip(1, 1) {
		t.Errorf("after recovery got %s", a.IP)
	}
}

func TestAllocateBadPod(t *testing.T) {
	p, _, _ := newPool(t, testConfig())
	p.SetENIs([]ENI{eni(1, 3)})
	for _, pd := range []Pod{{IfName: "eth0"}, {ContainerID: "c"}} {
		if _, err := p.Allocate(pd); err == nil || !strings.Contains(err.Error(), "want both set") {
			t.Errorf("%+v: %v", pd, err)
		}
	}
}

func TestCooldown(t *testing.T) {
	p, clk, cp := newPool(t, testConfig())
	p.SetENIs([]ENI{eni(1, 1)})
	a := mustAllocate(t, p, pod(1))
	clk.Advance(time.Second)
	released := clk.Now()
	if got := mustRelease(t, p, pod(1)); got != a.IP {
		t.Fatalf("released %s, want %s", got, a.IP)
	}
	_, f := cp.saved()
	if len(f.Records) != 1 || f.Records[0].State != checkpoint.Cooldown || !f.Records[0].ReleasedAt.Equal(released) || f.Records[0].ContainerID != "" {
		t.Fatalf("saved %+v, want one Cooldown record released now without the pod's key", f.Records)
	}
	if pl := p.Plan(); !pl.NextCheck.Equal(released.Add(30 * time.Second)) {
		t.Errorf("NextCheck %v, want the cooldown's end", pl.NextCheck)
	}
	for _, d := range []time.Duration{0, 29 * time.Second} {
		clk.Advance(d - (clk.Now().Sub(released)))
		if _, err := p.Allocate(pod(2)); !errors.Is(err, ErrNoIdle) {
			t.Errorf("%s after the release: %v, want ErrNoIdle", d, err)
		}
	}
	clk.Advance(time.Second)
	if b := mustAllocate(t, p, pod(2)); b.IP != a.IP {
		t.Errorf("after the cooldown got %s", b.IP)
	}
	// The same container added again after its DEL: a new record, no clash with the old one.
	if _, ok, err := p.Release("c1", "eth0"); ok || err != nil {
		t.Errorf("second DEL: %v %v, want ok false, err nil", ok, err)
	}
}

func TestReleaseSaveFails(t *testing.T) {
	p, _, cp := newPool(t, testConfig())
	p.SetENIs([]ENI{eni(1, 3)})
	a := mustAllocate(t, p, pod(1))
	cp.setFail(true)
	if _, ok, err := p.Release("c1", "eth0"); ok || !errors.Is(err, errDisk) {
		t.Fatalf("got %v %v, want the save's error", ok, err)
	}
	if r, ok := p.Lookup("c1", "eth0"); !ok || r.State != checkpoint.Assigned || r.IP != a.IP {
		t.Errorf("after the failed release: %+v %v, want still assigned", r, ok)
	}
	cp.setFail(false)
	if got := mustRelease(t, p, pod(1)); got != a.IP {
		t.Errorf("retry released %s", got)
	}
}

func TestRestored(t *testing.T) {
	cfg := testConfig()
	clk, cp := newClock(), &fakeCP{}
	restored := []checkpoint.Record{
		{ContainerID: "c1", IfName: "eth0", PodNamespace: "default", PodName: "p1", IP: ip(1, 1), ENI: "eni-1", State: checkpoint.Assigned, AssignedAt: t0.Add(-time.Hour)},
		{IP: ip(1, 2), ENI: "eni-1", State: checkpoint.Cooldown, ReleasedAt: t0.Add(-10 * time.Second)},
		{IP: ip(1, 3), ENI: "eni-1", State: checkpoint.Quarantined, Reason: "a host route with no record"},
		{IP: ip(1, 5), ENI: "eni-1", State: checkpoint.Cooldown, ReleasedAt: t0.Add(time.Hour)}, // a clock gone back
	}
	p, err := New(cfg, clk, cp, restored)
	if err != nil {
		t.Fatal(err)
	}
	p.SetENIs([]ENI{eni(1, 5)})
	if a := mustAllocate(t, p, pod(1)); a.IP != ip(1, 1) {
		t.Errorf("the restored pod's retry got %s", a.IP)
	}
	if a := mustAllocate(t, p, pod(2)); a.IP != ip(1, 4) {
		t.Errorf("got %s, want the one address neither restored nor cooling down", a.IP)
	}
	if _, err := p.Allocate(pod(3)); !errors.Is(err, ErrNoIdle) {
		t.Errorf("got %v, want ErrNoIdle", err)
	}
	if pl := p.Plan(); !pl.NextCheck.Equal(t0.Add(20 * time.Second)) {
		t.Errorf("NextCheck %v, want the restored cooldown's end 20 s on", pl.NextCheck)
	}
	clk.Advance(20 * time.Second)
	if a := mustAllocate(t, p, pod(3)); a.IP != ip(1, 2) {
		t.Errorf("after the restored cooldown got %s", a.IP)
	}
	clk.Advance(9 * time.Second)
	if _, err := p.Allocate(pod(4)); !errors.Is(err, ErrNoIdle) {
		t.Errorf("29 s after start: %v, want the future-dated cooldown still running from the start", err)
	}
	clk.Advance(time.Second)
	if a := mustAllocate(t, p, pod(4)); a.IP != ip(1, 5) {
		t.Errorf("got %s", a.IP)
	}
	if r, ok := p.Lookup("", ""); ok {
		t.Errorf("lookup of no pod: %+v", r)
	}
}

func TestNewRejects(t *testing.T) {
	a := checkpoint.Record{ContainerID: "c1", IfName: "eth0", IP: ip(1, 1), ENI: "eni-1", State: checkpoint.Assigned}
	for _, tc := range []struct {
		name string
		recs func() []checkpoint.Record
		want string
	}{
		{"no ip", func() []checkpoint.Record { r := a; r.IP = netip.Addr{}; return []checkpoint.Record{r} }, "restored record 0 (ip)"},
		{"IPv6", func() []checkpoint.Record {
			r := a
			r.IP = netip.MustParseAddr("fd00::1")
			return []checkpoint.Record{r}
		}, "want an IPv4"},
		{"bad state", func() []checkpoint.Record { r := a; r.State = "Free"; return []checkpoint.Record{r} }, "restored record 0 (state)"},
		{"assigned without pod", func() []checkpoint.Record { r := a; r.ContainerID = ""; return []checkpoint.Record{r} }, "(containerID, ifName)"},
		{"assigned without ENI", func() []checkpoint.Record { r := a; r.ENI = ""; return []checkpoint.Record{r} }, "(eni)"},
		{"cooldown without time", func() []checkpoint.Record {
			return []checkpoint.Record{{IP: ip(1, 1), ENI: "eni-1", State: checkpoint.Cooldown}}
		}, "(releasedAt)"},
		{"address twice", func() []checkpoint.Record {
			b := a
			b.ContainerID = "c2"
			return []checkpoint.Record{a, b}
		}, "restored record 1 (ip): 10.0.1.1 is also held by record 0"},
		{"pod twice", func() []checkpoint.Record { b := a; b.IP = ip(1, 2); return []checkpoint.Record{a, b} }, "restored record 1 (containerID, ifName)"},
	} {
		if _, err := New(testConfig(), newClock(), &fakeCP{}, tc.recs()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := New(testConfig(), nil, &fakeCP{}, nil); err == nil {
		t.Error("no clock accepted")
	}
	// A quarantined record may share its address with a held one.
	q := checkpoint.Record{IP: ip(1, 1), State: checkpoint.Quarantined, Reason: "claimed twice"}
	if _, err := New(testConfig(), newClock(), &fakeCP{}, []checkpoint.Record{a, q}); err != nil {
		t.Errorf("assigned + quarantined: %v", err)
	}
}

func TestSetENIsLost(t *testing.T) {
	p, _, _ := newPool(t, testConfig())
	p.SetENIs([]ENI{eni(1, 4), eni(2, 2)})
	a1 := mustAllocate(t, p, pod(1)) // 10.0.2.1
	a2 := mustAllocate(t, p, pod(2)) // 10.0.2.2
	if a1.IP != ip(2, 1) || a2.IP != ip(2, 2) {
		t.Fatalf("got %s %s", a1.IP, a2.IP)
	}
	moved := eni(1, 4)
	moved.Addrs = append(moved.Addrs, ip(2, 2)) // the cloud now says eni-1 holds 10.0.2.2
	p.SetENIs([]ENI{moved})                     // and eni-2 is gone
	lost := p.Lost()
	if len(lost) != 2 {
		t.Fatalf("lost %+v, want both pods", lost)
	}
	slices.SortFunc(lost, func(a, b checkpoint.Record) int { return a.IP.Compare(b.IP) })
	if lost[0].State != checkpoint.Quarantined || !strings.Contains(lost[0].Reason, "no longer lists 10.0.2.1 on eni-2") ||
		!strings.Contains(lost[1].Reason, "lists 10.0.2.2 on eni-1, not on eni-2") || lost[0].PodName != "p1" {
		t.Errorf("lost %+v", lost)
	}
	if again := p.Lost(); len(again) != 0 {
		t.Errorf("Lost again: %+v", again)
	}
	if r, ok := p.Lookup("c1", "eth0"); !ok || r.State != checkpoint.Quarantined {
		t.Errorf("lookup %+v %v", r, ok)
	}
	if _, err := p.Allocate(pod(1)); err == nil || !strings.Contains(err.Error(), "quarantined") {
		t.Errorf("ADD retry of a lost pod: %v", err)
	}
	// 10.0.2.2 is listed and quarantined: never handed out; the four of eni-1 are.
	for i := 10; i < 14; i++ {
		if a := mustAllocate(t, p, pod(i)); a.IP == ip(2, 2) || a.ENI.ID != "eni-1" {
			t.Errorf("got %s on %s", a.IP, a.ENI.ID)
		}
	}
	if _, err := p.Allocate(pod(20)); !errors.Is(err, ErrNoIdle) {
		t.Errorf("got %v, want ErrNoIdle", err)
	}
	// The lost pod's DEL drops its record; its address, still listed, cools down first.
	if got, ok, err := p.Release("c2", "eth0"); got != ip(2, 2) || !ok || err != nil {
		t.Errorf("release of the lost pod: %s %v %v", got, ok, err)
	}
	if s := p.Stats(); s.Quarantined != 1 || s.Cooldown != 1 {
		t.Errorf("%+v, want the unlisted one still quarantined and the listed one cooling down", s)
	}
	// Idle addresses that vanish simply go.
	p.SetENIs(nil)
	if s := p.Stats(); s.Idle != 0 || s.ENIs != 0 || len(p.Lost()) != 4 {
		t.Errorf("%+v", s)
	}
}

func TestSetENIsBadInput(t *testing.T) {
	p, _, _ := newPool(t, testConfig())
	weird := eni(2, 2)
	weird.Addrs = append(weird.Addrs, ip(1, 1), netip.Addr{}, netip.MustParseAddr("fd00::1"))
	p.SetENIs([]ENI{eni(1, 2), eni(1, 5), {Addrs: []netip.Addr{ip(7, 7)}}, weird})
	if s := p.Stats(); s.ENIs != 2 || s.Idle != 4 {
		t.Errorf("%+v, want 2 ENIs and 4 idle", s)
	}
}

func TestWaitingAndChanged(t *testing.T) {
	p, _, _ := newPool(t, testConfig())
	ch := p.Changed()
	if _, err := p.Allocate(pod(1)); !errors.Is(err, ErrNoIdle) {
		t.Fatal(err)
	}
	select {
	case <-ch:
	default:
		t.Error("a new waiting pod did not close Changed")
	}
	ch = p.Changed()
	if _, err := p.Allocate(pod(1)); !errors.Is(err, ErrNoIdle) {
		t.Fatal(err)
	}
	select {
	case <-ch:
		t.Error("a retry of a waiting pod closed Changed: waiters would spin")
	default:
	}
	if s := p.Stats(); s.Waiting != 1 {
		t.Errorf("%+v", s)
	}
	p.Abandon("c1", "eth0")
	select {
	case <-ch:
	default:
		t.Error("Abandon did not close Changed")
	}
	if s := p.Stats(); s.Waiting != 0 {
		t.Errorf("%+v", s)
	}
	p.Allocate(pod(2))
	p.Release("c2", "eth0") // a DEL of a waiting pod ends its wait
	if s := p.Stats(); s.Waiting != 0 {
		t.Errorf("%+v", s)
	}
	p.Allocate(pod(3))
	ch = p.Changed()
	p.Assigned("eni-1", []netip.Addr{ip(1, 1)})
	p.SetENIs([]ENI{eni(1, 1)})
	select {
	case <-ch:
	default:
		t.Error("new addresses did not close Changed")
	}
	mustAllocate(t, p, pod(3))
	if s := p.Stats(); s.Waiting != 0 || s.Assigned != 1 {
		t.Errorf("%+v", s)
	}
	ch = p.Changed()
	p.SetENIs([]ENI{eni(1, 1)})
	select {
	case <-ch:
		t.Error("an unchanged view closed Changed")
	default:
	}
}

func TestQuarantine(t *testing.T) {
	p, _, cp := newPool(t, testConfig())
	p.SetENIs([]ENI{eni(1, 3)})
	mustAllocate(t, p, pod(1)) // 10.0.1.1
	if err := p.Quarantine(ip(1, 2), "a host route with no record"); err != nil {
		t.Fatal(err)
	}
	if err := p.Quarantine(ip(1, 1), "its veth belongs to another pod"); err != nil {
		t.Fatal(err)
	}
	if r, _ := p.Lookup("c1", "eth0"); r.State != checkpoint.Quarantined || r.Reason != "its veth belongs to another pod" {
		t.Errorf("%+v", r)
	}
	_, f := cp.saved()
	if len(f.Records) != 2 || f.Records[1].State != checkpoint.Quarantined || f.Records[1].ENI != "eni-1" {
		t.Errorf("saved %+v", f.Records)
	}
	if a := mustAllocate(t, p, pod(2)); a.IP != ip(1, 3) {
		t.Errorf("got %s", a.IP)
	}
	cp.setFail(true)
	if err := p.Quarantine(ip(9, 9), "x"); !errors.Is(err, errDisk) {
		t.Errorf("got %v", err)
	}
	if s := p.Stats(); s.Quarantined != 3 {
		t.Errorf("%+v: a quarantine must hold even when its save fails", s)
	}
	if err := p.Quarantine(netip.Addr{}, "x"); err == nil {
		t.Error("invalid address accepted")
	}
}

func TestDegradedStats(t *testing.T) {
	p, _, _ := newPool(t, testConfig())
	p.SetDegraded(true, "DescribeNetworkInterfaces: Throttling")
	if s := p.Stats(); !s.Degraded || s.Capacity != 210 {
		t.Errorf("%+v", s)
	}
	p.SetDegraded(false, "")
	if s := p.Stats(); s.Degraded {
		t.Errorf("%+v", s)
	}
}

// A failed save leaves the address as it was, its idle time included: its reclaim is not put off.
func TestAllocateSaveFailsKeepsIdleTime(t *testing.T) {
	cfg := testConfig()
	cfg.MinIdle, cfg.TargetIdle, cfg.MaxIdle, cfg.ReclaimJitter = 0, 1, 1, 0
	p, clk, cp := newPool(t, cfg)
	p.SetENIs([]ENI{eni(1, 4)}) // .2, .3 and .4 may go
	mustAllocate(t, p, pod(1))  // the primary
	clk.Advance(10 * time.Minute)
	cp.setFail(true)
	if _, err := p.Allocate(pod(2)); !errors.Is(err, errDisk) { // it tried .2
		t.Fatal(err)
	}
	want := []Unassign{{"eni-1", []netip.Addr{ip(1, 2), ip(1, 3)}}}
	if pl := p.Plan(); !slices.EqualFunc(pl.Unassign, want, func(a, b Unassign) bool { return a.ENI == b.ENI && slices.Equal(a.IPs, b.IPs) }) || !pl.NextCheck.IsZero() {
		t.Errorf("%+v, want %v: the failed allocation must not restart the idle time of .2", pl, want)
	}
}

// Limits.Pods is the figure weft plan and the quota report give for every built-in instance type, and the
// LimitError names it with the type's own EniQuantity.
func TestLimitsMatchInstanceTypes(t *testing.T) {
	types := instancetype.Builtin()
	if len(types) == 0 {
		t.Fatal("no built-in instance types")
	}
	for _, ty := range types {
		l := Limits{InstanceType: ty.ID, ENIs: ty.ENIs - 1, AddrsPerENI: ty.IPv4PerENI}
		if l.Pods() != ty.SharedENIPods() {
			t.Errorf("%s: Pods %d, SharedENIPods %d", ty.ID, l.Pods(), ty.SharedENIPods())
		}
		msg := (&LimitError{Limits: l, InUse: l.Pods()}).Error()
		if want := fmt.Sprintf("(%d ENIs - the primary) x %d addresses", ty.ENIs, ty.IPv4PerENI); !strings.Contains(msg, want) {
			t.Errorf("%s: %s, want %q", ty.ID, msg, want)
		}
	}
}
