package etcd

import (
	"context"
	"errors"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/klog/v2"

	"github.com/weftnet/weft/subnet"
)

// WatchLease follows this node's own lease key. The caller holds the lease when it starts watching; from then on
// a deletion or expiry is reported once as EventRemoved and a re-creation of the key as EventAdded.
func (m *Manager) WatchLease(ctx context.Context, l *subnet.Lease, out chan<- []subnet.Event) error {
	key := m.subnetsDir() + l.Key()
	present := true // as far as the caller knows
	last := *l
	b := retryBackoff()
	for {
		resp, err := m.cli.Get(ctx, key)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			klog.Errorf("watch own lease %s: %v (retrying)", l.Key(), err)
			if b.Wait(ctx) != nil {
				return ctx.Err()
			}
			continue
		}
		var ev []subnet.Event
		if len(resp.Kvs) == 0 && present {
			ev = []subnet.Event{{Type: subnet.EventRemoved, Lease: last}}
			present = false
		} else if len(resp.Kvs) == 1 {
			if e, ok := m.parseKV(resp.Kvs[0]); ok && !e.invalid && (!present || e.lease.Asof != last.Asof) {
				ev = []subnet.Event{{Type: subnet.EventAdded, Lease: e.lease}}
				last, present = e.lease, true
			}
		}
		if ev != nil && !send(ctx, out, ev) {
			return ctx.Err()
		}
		err = m.watchOwn(ctx, key, m.watchStart(resp.Header.Revision), &present, &last, out)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		klog.Infof("watch of own lease %s ended (%v); reading it again", l.Key(), err)
		if b.Wait(ctx) != nil {
			return ctx.Err()
		}
	}
}

func (m *Manager) watchOwn(ctx context.Context, key string, rev int64, present *bool, last *subnet.Lease, out chan<- []subnet.Event) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	for wr := range m.cli.Watch(wctx, key, clientv3.WithRev(rev)) {
		if err := wr.Err(); err != nil {
			return err
		}
		for _, ev := range wr.Events {
			e, ok := m.parseKV(ev.Kv)
			if !ok {
				continue
			}
			var b []subnet.Event
			switch {
			case ev.Type == clientv3.EventTypeDelete:
				if *present {
					b = []subnet.Event{{Type: subnet.EventRemoved, Lease: *last}}
				}
				*present = false
			case !e.invalid:
				b = []subnet.Event{{Type: subnet.EventAdded, Lease: e.lease}}
				*last, *present = e.lease, true
			}
			if b != nil && !send(ctx, out, b) {
				return ctx.Err()
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.New("watch channel closed")
}
