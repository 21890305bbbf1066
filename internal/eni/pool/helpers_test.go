package pool

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/eni/checkpoint"
)

var t0 = time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

var errDisk = errors.New("disk full")

// fakeCP keeps the last saved file and fails while fail is set.
type fakeCP struct {
	mu    sync.Mutex
	fail  bool
	saves int
	last  *checkpoint.File
}

func (c *fakeCP) Save(f *checkpoint.File) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail {
		return errDisk
	}
	c.saves++
	cp := *f
	cp.Records = slices.Clone(f.Records)
	c.last = &cp
	return nil
}

func (c *fakeCP) setFail(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fail = on
}

func (c *fakeCP) saved() (int, *checkpoint.File) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.saves, c.last
}

func testConfig() Config {
	return Config{MinIdle: 2, TargetIdle: 4, MaxIdle: 8, Cooldown: 30 * time.Second, IdleReclaimAfter: 10 * time.Minute,
		ReclaimBatch: 5, ReclaimJitter: 0.1, Limits: Limits{InstanceType: "ecs.c7.4xlarge", ENIs: 7, AddrsPerENI: 30},
		Instance: "i-test", Rand: func() float64 { return 0 }}
}

func newPool(t testing.TB, cfg Config, restored ...checkpoint.Record) (*Pool, *fakeClock, *fakeCP) {
	t.Helper()
	clk, cp := newClock(), &fakeCP{}
	p, err := New(cfg, clk, cp, restored)
	if err != nil {
		t.Fatal(err)
	}
	return p, clk, cp
}

// ip returns 10.0.a.b.
func ip(a, b int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, byte(a), byte(b)}) }

// eni returns a usable ENI eni-<n> with the addresses 10.0.n.1 .. 10.0.n.<count>.
func eni(n, count int) ENI {
	e := ENI{ID: fmt.Sprintf("eni-%d", n), MAC: fmt.Sprintf("00:16:3e:00:00:%02x", n), VSwitchID: "vsw-1", Usable: true}
	for i := 1; i <= count; i++ {
		e.Addrs = append(e.Addrs, ip(n, i))
	}
	return e
}

func pod(n int) Pod {
	return Pod{ContainerID: fmt.Sprintf("c%d", n), Netns: fmt.Sprintf("/var/run/netns/p%d", n), IfName: "eth0", Namespace: "default", Name: fmt.Sprintf("p%d", n)}
}

func mustAllocate(t testing.TB, p *Pool, pd Pod) Allocation {
	t.Helper()
	a, err := p.Allocate(pd)
	if err != nil {
		t.Fatalf("allocate %s: %v", pd.ContainerID, err)
	}
	return a
}

func mustRelease(t testing.TB, p *Pool, pd Pod) netip.Addr {
	t.Helper()
	ip, ok, err := p.Release(pd.ContainerID, pd.IfName)
	if err != nil || !ok {
		t.Fatalf("release %s: %v %v", pd.ContainerID, ok, err)
	}
	return ip
}
