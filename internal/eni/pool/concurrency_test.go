package pool

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/eni/checkpoint"
)

type nopCP struct{}

func (nopCP) Save(*checkpoint.File) error { return nil }

// Many ADDs and DELs at once, a plan loop growing and shrinking the pool meanwhile: under -race, and no address
// is ever held by two pods.
func TestConcurrent(t *testing.T) {
	cfg := simConfig()
	cfg.Limits = Limits{InstanceType: "ecs.t6", ENIs: 2, AddrsPerENI: 5}
	clk := newClock()
	p, err := New(cfg, clk, &fakeCP{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	owner := map[netip.Addr]string{}
	done := make(chan struct{})
	loop := make(chan error, 1)
	go func() { loop <- planLoop(p, clk, cfg, done) }()

	const workers, rounds = 12, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for g := range workers {
		wg.Go(func() {
			for r := range rounds {
				pd := Pod{ContainerID: fmt.Sprintf("g%d-%d", g, r), IfName: "eth0"}
				var a Allocation
				for {
					ch := p.Changed()
					var err error
					if a, err = p.Allocate(pd); err == nil {
						break
					}
					var le *LimitError
					if !errors.Is(err, ErrNoIdle) && !errors.As(err, &le) {
						errs <- err
						return
					}
					<-ch
				}
				mu.Lock()
				if o, ok := owner[a.IP]; ok {
					mu.Unlock()
					errs <- fmt.Errorf("%s handed to %s while %s holds it", a.IP, pd.ContainerID, o)
					return
				}
				owner[a.IP] = pd.ContainerID
				mu.Unlock()
				if b, _ := p.Allocate(pd); b.IP != a.IP { // an ADD retry meanwhile
					errs <- fmt.Errorf("retry of %s got %s, want %s", pd.ContainerID, b.IP, a.IP)
					return
				}
				mu.Lock()
				delete(owner, a.IP) // before the release: from then on another pod may get it
				mu.Unlock()
				if _, ok, err := p.Release(pd.ContainerID, pd.IfName); !ok || err != nil {
					errs <- fmt.Errorf("release %s: %v %v", pd.ContainerID, ok, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(done)
	if err := <-loop; err != nil {
		t.Fatal(err)
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if s := p.Stats(); s.Assigned != 0 || s.Waiting != 0 {
		t.Errorf("at the end: %+v", s)
	}
}

// planLoop is weftd's plan loop against an in-memory cloud, one plan at a time, the clock moving on.
func planLoop(p *Pool, clk *fakeClock, cfg Config, done <-chan struct{}) error {
	cloud := map[string][]netip.Addr{}
	var order []string
	next := 0
	newIP := func() netip.Addr { next++; return ip(200+next/250, next%250+1) }
	view := func() []ENI {
		var v []ENI
		for _, id := range order {
			v = append(v, ENI{ID: id, Addrs: append([]netip.Addr(nil), cloud[id]...), Usable: true})
		}
		return v
	}
	for {
		select {
		case <-done:
			return nil
		default:
		}
		pl := p.Plan()
		for _, a := range pl.Assign {
			var ips []netip.Addr
			for range a.N {
				ips = append(ips, newIP())
			}
			cloud[a.ENI] = append(cloud[a.ENI], ips...)
			p.Assigned(a.ENI, ips)
		}
		if pl.CreateENI > 0 {
			id := fmt.Sprintf("eni-%d", len(order)+1)
			if len(order) >= cfg.Limits.ENIs {
				return fmt.Errorf("plan creates a third ENI")
			}
			order = append(order, id)
			for range pl.CreateENI + 1 {
				cloud[id] = append(cloud[id], newIP())
			}
			p.Assigned(id, cloud[id])
		}
		for _, u := range pl.Unassign {
			if p.BeginUnassign(u) != nil {
				continue // a pod took one since the plan
			}
			gone := map[netip.Addr]bool{}
			for _, ip := range u.IPs {
				gone[ip] = true
			}
			var keep []netip.Addr
			for _, ip := range cloud[u.ENI] {
				if !gone[ip] {
					keep = append(keep, ip)
				}
			}
			cloud[u.ENI] = keep
			p.Unassigned(u.ENI, u.IPs, nil)
		}
		p.SetENIs(view())
		if lost := p.Lost(); len(lost) > 0 {
			return fmt.Errorf("lost %+v", lost)
		}
		clk.Advance(5 * time.Second)
		time.Sleep(100 * time.Microsecond) // pacing only: let the workers run
	}
}

func BenchmarkAllocateRelease(b *testing.B) {
	cfg := testConfig()
	clk := newClock()
	p, err := New(cfg, clk, nopCP{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	var enis []ENI
	for n := 1; n <= cfg.Limits.ENIs; n++ {
		enis = append(enis, eni(n, cfg.Limits.AddrsPerENI))
	}
	p.SetENIs(enis)
	for i := range 150 { // a node with 150 pods
		if _, err := p.Allocate(Pod{ContainerID: fmt.Sprintf("base%d", i), IfName: "eth0"}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		pd := Pod{ContainerID: fmt.Sprintf("c%d", i%50), IfName: "eth0"}
		if _, err := p.Allocate(pd); err != nil {
			b.Fatal(err)
		}
		if _, _, err := p.Release(pd.ContainerID, pd.IfName); err != nil {
			b.Fatal(err)
		}
		clk.Advance(time.Second)
	}
}
