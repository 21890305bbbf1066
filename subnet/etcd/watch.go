package etcd

import (
	"context"
	"errors"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/klog/v2"

	"github.com/weftnet/weft/internal/backoff"
	"github.com/weftnet/weft/subnet"
)

// WatchLeases implements subnet.Manager: one snapshot batch, then changes. When the watch breaks (for example
// because its revision was compacted) it lists the leases again and reports the difference, so no change is lost.
func (m *Manager) WatchLeases(ctx context.Context, out chan<- []subnet.Event) error {
	known := map[string]subnet.Lease{}
	first := true
	b := retryBackoff()
	for {
		entries, rev, err := m.list(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			klog.Errorf("watch leases: %v (retrying)", err)
			if b.Wait(ctx) != nil {
				return ctx.Err()
			}
			continue
		}
		var batch []subnet.Event
		batch, known = resync(known, entries)
		if first || len(batch) > 0 {
			if batch == nil {
				batch = []subnet.Event{}
			}
			if !send(ctx, out, batch) {
				return ctx.Err()
			}
			first = false
		}
		err = m.watchFrom(ctx, m.watchStart(rev), known, out)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		klog.Infof("lease watch ended (%v); listing the leases again", err)
		if b.Wait(ctx) != nil {
			return ctx.Err()
		}
	}
}

// resync compares a fresh listing with what was reported so far and returns the events that bring a watcher
// up to date, and the new state.
func resync(known map[string]subnet.Lease, entries []entry) ([]subnet.Event, map[string]subnet.Lease) {
	var batch []subnet.Event
	now := map[string]subnet.Lease{}
	for _, e := range entries {
		if e.invalid || e.hidden {
			continue
		}
		now[e.key] = e.lease
		if old, ok := known[e.key]; !ok || old.Asof != e.lease.Asof {
			batch = append(batch, subnet.Event{Type: subnet.EventAdded, Lease: e.lease})
		}
	}
	for k, l := range known {
		if _, ok := now[k]; !ok {
			batch = append(batch, subnet.Event{Type: subnet.EventRemoved, Lease: l})
		}
	}
	return batch, now
}

// watchStart is the revision a watch begins at after a listing at rev (a seam for the compaction test).
func (m *Manager) watchStart(rev int64) int64 {
	if m.startRev != nil {
		return m.startRev(rev)
	}
	return rev + 1
}

// watchFrom relays changes under <prefix>/subnets/ from revision rev until the watch fails or ctx ends.
func (m *Manager) watchFrom(ctx context.Context, rev int64, known map[string]subnet.Lease, out chan<- []subnet.Event) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wc := m.cli.Watch(wctx, m.subnetsDir(), clientv3.WithPrefix(), clientv3.WithRev(rev))
	for resp := range wc {
		if err := resp.Err(); err != nil {
			return err
		}
		var batch []subnet.Event
		for _, ev := range resp.Events {
			e, ok := m.parseKV(ev.Kv)
			if !ok {
				continue
			}
			switch {
			case ev.Type == clientv3.EventTypePut && !e.invalid && !e.hidden:
				known[e.key] = e.lease
				batch = append(batch, subnet.Event{Type: subnet.EventAdded, Lease: e.lease})
			case ev.Type == clientv3.EventTypeDelete || e.invalid || e.hidden:
				l, ok := known[e.key]
				if !ok {
					continue // never reported (skipped when written): nothing to take back
				}
				e.lease = l // with its attributes
				delete(known, e.key)
				batch = append(batch, subnet.Event{Type: subnet.EventRemoved, Lease: e.lease})
			}
		}
		if len(batch) > 0 && !send(ctx, out, batch) {
			return ctx.Err()
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.New("watch channel closed")
}

func send(ctx context.Context, out chan<- []subnet.Event, b []subnet.Event) bool {
	select {
	case out <- b:
		return true
	case <-ctx.Done():
		return false
	}
}

// retryBackoff paces the attempts of a broken watch or a failed listing: 100 ms doubling up to 10 s, with jitter,
// so a restarting etcd is not hammered by every node at once. It is never reset: a watch that keeps breaking
// right after a successful listing must not retry at the shortest delay forever.
func retryBackoff() backoff.Backoff {
	return backoff.Backoff{Min: 100 * time.Millisecond, Max: 10 * time.Second}
}
