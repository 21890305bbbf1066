// Package subnettest offers an in-memory subnet.Manager for unit tests of the backends and the daemon, and the
// contract suite (RunContract) that the fake and every real manager pass alike, so the fake cannot drift from
// them.
//
// A Fake is one store; Manager() returns a node's view of it. Tests play the other nodes with AddLease and
// RemoveLease, whose changes reach every WatchLeases and WatchLease receiver as events. Watchers queue without
// bound, so a test that stops reading never blocks the store.
package subnettest

import (
	"context"
	"fmt"
	"sync"

	"github.com/weftnet/weft/subnet"
)

// Fake is an in-memory lease store.
type Fake struct {
	cfg *subnet.Config

	mu       sync.Mutex
	leases   map[string]subnet.Lease // by key
	rev      int64
	watchers map[*queue]struct{}
}

// NewFake returns a store serving cfg, which it validates with ValidateEtcd (panicking on a bad test config).
func NewFake(cfg *subnet.Config) *Fake {
	if err := cfg.ValidateEtcd(); err != nil {
		panic(fmt.Sprintf("subnettest: invalid config: %v", err))
	}
	return &Fake{cfg: cfg, leases: map[string]subnet.Lease{}, watchers: map[*queue]struct{}{}}
}

// Manager returns a subnet.Manager for one node of the store.
func (f *Fake) Manager() subnet.Manager { return &fakeManager{f: f} }

// AddLease stores (or replaces) a lease for another node and tells the watchers.
func (f *Fake) AddLease(l subnet.Lease) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.put(l)
}

// RemoveLease deletes the lease with l's key (as an expiry or an operator would) and tells the watchers.
func (f *Fake) RemoveLease(l subnet.Lease) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if old, ok := f.leases[l.Key()]; ok {
		delete(f.leases, l.Key())
		f.rev++
		f.broadcast(subnet.Event{Type: subnet.EventRemoved, Lease: old})
	}
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

// put stores l with a new revision; mu must be held.
func (f *Fake) put(l subnet.Lease) subnet.Lease {
	f.rev++
	l.Asof = f.rev
	f.leases[l.Key()] = l
	f.broadcast(subnet.Event{Type: subnet.EventAdded, Lease: l})
	return l
}

// broadcast queues e for every watcher; mu must be held.
func (f *Fake) broadcast(e subnet.Event) {
	for q := range f.watchers {
		q.push(e)
	}
}

// queue is one watcher's unbounded backlog.
type queue struct {
	mu     sync.Mutex
	events []subnet.Event
	ready  chan struct{} // has a token while events is not empty
}

func (q *queue) push(e subnet.Event) {
	q.mu.Lock()
	q.events = append(q.events, e)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *queue) take() []subnet.Event {
	q.mu.Lock()
	defer q.mu.Unlock()
	b := q.events
	q.events = nil
	return b
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
	taken4, taken6 := subnet.NewTaken(f.cfg.SubnetLen), subnet.NewTaken(f.cfg.IPv6SubnetLen)
	for _, l := range f.leases {
		if samePublicIP(&l.Attrs, attrs) {
			l.Attrs = *attrs
			l = f.put(l)
			return &l, nil
		}
		taken4.Add(l.Subnet)
		taken6.Add(l.IPv6Subnet)
	}
	l := subnet.Lease{EnableIPv4: f.cfg.EnableIPv4, EnableIPv6: f.cfg.EnableIPv6, Attrs: *attrs}
	var err error
	if f.cfg.EnableIPv4 {
		if l.Subnet, err = f.cfg.V4Range().PickFree(taken4); err != nil {
			return nil, fmt.Errorf("allocate an IPv4 /%d in %s: %w", f.cfg.SubnetLen, f.cfg.Network, err)
		}
	}
	if f.cfg.EnableIPv6 {
		if l.IPv6Subnet, err = f.cfg.V6Range().PickFree(taken6); err != nil {
			return nil, fmt.Errorf("allocate an IPv6 /%d in %s: %w", f.cfg.IPv6SubnetLen, f.cfg.IPv6Network, err)
		}
	}
	l = f.put(l)
	return &l, nil
}

func (m *fakeManager) RenewLease(_ context.Context, l *subnet.Lease) error {
	m.f.mu.Lock()
	defer m.f.mu.Unlock()
	if cur, ok := m.f.leases[l.Key()]; !ok || !samePublicIP(&cur.Attrs, &l.Attrs) {
		return fmt.Errorf("renew lease %s: %w", l.Key(), subnet.ErrLeaseNotFound)
	}
	return nil
}

func (m *fakeManager) CompleteLease(context.Context, *subnet.Lease) error { return nil }

func (m *fakeManager) WatchLeases(ctx context.Context, out chan<- []subnet.Event) error {
	return m.watch(ctx, out, nil)
}

func (m *fakeManager) WatchLease(ctx context.Context, l *subnet.Lease, out chan<- []subnet.Event) error {
	return m.watch(ctx, out, l)
}

// watch relays the store's events to out until ctx ends: for own == nil all of them after a snapshot; else only
// those of own's key, after an EventRemoved if the lease is already gone.
func (m *fakeManager) watch(ctx context.Context, out chan<- []subnet.Event, own *subnet.Lease) error {
	q := &queue{ready: make(chan struct{}, 1)}
	f := m.f
	f.mu.Lock()
	var first []subnet.Event
	if own == nil {
		first = []subnet.Event{}
		for _, l := range f.leases {
			first = append(first, subnet.Event{Type: subnet.EventAdded, Lease: l})
		}
	} else if cur, ok := f.leases[own.Key()]; !ok {
		first = []subnet.Event{{Type: subnet.EventRemoved, Lease: *own}}
	} else if !sameAttrs(&cur.Attrs, &own.Attrs) { // changed before the watch began
		first = []subnet.Event{{Type: subnet.EventAdded, Lease: cur}}
	}
	f.watchers[q] = struct{}{}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.watchers, q)
		f.mu.Unlock()
	}()
	if first != nil && !send(ctx, out, first) {
		return ctx.Err()
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-q.ready:
		}
		var b []subnet.Event
		for _, e := range q.take() {
			if own == nil || e.Lease.Key() == own.Key() {
				b = append(b, e)
			}
		}
		if len(b) > 0 && !send(ctx, out, b) {
			return ctx.Err()
		}
	}
}

func send(ctx context.Context, out chan<- []subnet.Event, b []subnet.Event) bool {
	select {
	case out <- b:
		return true
	case <-ctx.Done():
		return false
	}
}

var _ subnet.Manager = (*fakeManager)(nil)

func sameAttrs(a, b *subnet.LeaseAttrs) bool {
	return a.PublicIP == b.PublicIP && a.PublicIPv6 == b.PublicIPv6 && a.BackendType == b.BackendType &&
		string(a.BackendData) == string(b.BackendData)
}
