// Package subnettest offers an in-memory subnet.Manager for unit tests of the backends and the daemon, and the
// contract suite that every real manager also passes, so the fake cannot drift from them.
package subnettest

import (
	"context"
	"fmt"
	"net/netip"
	"sync"

	"github.com/weftnet/weft/subnet"
)

// Fake is an in-memory lease store; Manager returns node views of it.
type Fake struct {
	cfg *subnet.Config

	mu       sync.Mutex
	leases   map[string]subnet.Lease // by key
	rev      int64
	watchers map[chan []subnet.Event]struct{}
}

// NewFake returns a store serving cfg (validated with ValidateEtcd).
func NewFake(cfg *subnet.Config) *Fake {
	if err := cfg.ValidateEtcd(); err != nil {
		panic(fmt.Sprintf("subnettest: invalid config: %v", err))
	}
	return &Fake{cfg: cfg, leases: map[string]subnet.Lease{}, watchers: map[chan []subnet.Event]struct{}{}}
}

// Manager returns a subnet.Manager for one node of the store.
func (f *Fake) Manager() subnet.Manager { return &fakeManager{f: f} }

// AddLease stores (or replaces) a lease for another node and tells the watchers.
func (f *Fake) AddLease(l subnet.Lease) {
	f.mu.Lock()
	f.rev++
	l.Asof = f.rev
	f.leases[l.Key()] = l
	f.broadcast([]subnet.Event{{Type: subnet.EventAdded, Lease: l}})
	f.mu.Unlock()
}

// RemoveLease deletes a lease by key and tells the watchers.
func (f *Fake) RemoveLease(l subnet.Lease) {
	f.mu.Lock()
	if old, ok := f.leases[l.Key()]; ok {
		delete(f.leases, l.Key())
		f.rev++
		f.broadcast([]subnet.Event{{Type: subnet.EventRemoved, Lease: old}})
	}
	f.mu.Unlock()
}

// Leases returns a copy of the stored leases.
func (f *Fake) Leases() []subnet.Lease {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]subnet.Lease, 0, len(f.leases))
	for _, l := range f.leases {
		out = append(out, l)
	}
	return out
}

// broadcast must be called with mu held; watcher channels are buffered generously and drained by their owners.
func (f *Fake) broadcast(b []subnet.Event) {
	for ch := range f.watchers {
		ch <- b
	}
}

type fakeManager struct{ f *Fake }

func (m *fakeManager) Name() string { return "fake" }

func (m *fakeManager) GetNetworkConfig(context.Context) (*subnet.Config, error) {
	c := *m.f.cfg
	return &c, nil
}

func (m *fakeManager) PreviousLease(_ context.Context, attrs *subnet.LeaseAttrs) (*subnet.Lease, error) {
	m.f.mu.Lock()
	defer m.f.mu.Unlock()
	for _, l := range m.f.leases {
		if samePublicIP(&l.Attrs, attrs) {
			l := l
			return &l, nil
		}
	}
	return nil, nil
}

func samePublicIP(a, b *subnet.LeaseAttrs) bool {
	if b.PublicIP.IsValid() {
		return a.PublicIP == b.PublicIP
	}
	return b.PublicIPv6.IsValid() && a.PublicIPv6 == b.PublicIPv6
}

func (m *fakeManager) AcquireLease(_ context.Context, attrs *subnet.LeaseAttrs) (*subnet.Lease, error) {
	f := m.f
	f.mu.Lock()
	defer f.mu.Unlock()
	taken4, taken6 := map[netip.Prefix]bool{}, map[netip.Prefix]bool{}
	for k, l := range f.leases {
		if samePublicIP(&l.Attrs, attrs) {
			l.Attrs = *attrs
			f.rev++
			l.Asof = f.rev
			f.leases[k] = l
			f.broadcast([]subnet.Event{{Type: subnet.EventAdded, Lease: l}})
			return &l, nil
		}
		taken4[l.Subnet], taken6[l.IPv6Subnet] = true, true
	}
	l := subnet.Lease{EnableIPv4: f.cfg.EnableIPv4, EnableIPv6: f.cfg.EnableIPv6, Attrs: *attrs}
	var err error
	if f.cfg.EnableIPv4 {
		if l.Subnet, err = f.cfg.V4Range().PickFree(taken4); err != nil {
			return nil, err
		}
	}
	if f.cfg.EnableIPv6 {
		if l.IPv6Subnet, err = f.cfg.V6Range().PickFree(taken6); err != nil {
			return nil, err
		}
	}
	f.rev++
	l.Asof = f.rev
	f.leases[l.Key()] = l
	f.broadcast([]subnet.Event{{Type: subnet.EventAdded, Lease: l}})
	return &l, nil
}

func (m *fakeManager) RenewLease(_ context.Context, l *subnet.Lease) error {
	m.f.mu.Lock()
	defer m.f.mu.Unlock()
	if _, ok := m.f.leases[l.Key()]; !ok {
		return fmt.Errorf("renew lease %s: the lease is gone", l.Key())
	}
	return nil
}

func (m *fakeManager) CompleteLease(context.Context, *subnet.Lease) error { return nil }

func (m *fakeManager) WatchLeases(ctx context.Context, out chan<- []subnet.Event) error {
	return m.watch(ctx, out, "")
}

func (m *fakeManager) WatchLease(ctx context.Context, l *subnet.Lease, out chan<- []subnet.Event) error {
	return m.watch(ctx, out, l.Key())
}

// watch relays the store's events (only those of key, when set) to out until ctx ends.
func (m *fakeManager) watch(ctx context.Context, out chan<- []subnet.Event, key string) error {
	ch := make(chan []subnet.Event, 1024)
	f := m.f
	f.mu.Lock()
	var snap []subnet.Event
	if key == "" {
		snap = []subnet.Event{}
		for _, l := range f.leases {
			snap = append(snap, subnet.Event{Type: subnet.EventAdded, Lease: l})
		}
	}
	f.watchers[ch] = struct{}{}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.watchers, ch)
		f.mu.Unlock()
	}()
	if snap != nil {
		select {
		case out <- snap:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case b := <-ch:
			if key != "" {
				var mine []subnet.Event
				for _, e := range b {
					if e.Lease.Key() == key {
						mine = append(mine, e)
					}
				}
				b = mine
			}
			if len(b) == 0 {
				continue
			}
			select {
			case out <- b:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}
