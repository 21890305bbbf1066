package etcd

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/weftnet/weft/subnet"
)

// RenewLease gives the lease a fresh etcd lease of the full TTL (a reservation needs nothing). It fails with
// subnet.ErrLeaseNotFound when the key is gone or now belongs to another node.
func (m *Manager) RenewLease(ctx context.Context, l *subnet.Lease) error {
	key := m.subnetsDir() + l.Key()
	resp, err := m.cli.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("renew lease %s: %w", l.Key(), err)
	}
	if len(resp.Kvs) == 0 {
		return fmt.Errorf("renew lease %s: %w", l.Key(), subnet.ErrLeaseNotFound)
	}
	kv := resp.Kvs[0]
	var stored subnet.LeaseAttrs
	if err := json.Unmarshal(kv.Value, &stored); err != nil || !samePublicIP(&stored, &l.Attrs) {
		return fmt.Errorf("renew lease %s: it now belongs to another node (PublicIP %v): %w", l.Key(), stored.PublicIP, subnet.ErrLeaseNotFound)
	}
	if kv.Lease == 0 {
		return nil // a reservation never expires
	}
	id, err := m.grant(ctx)
	if err != nil {
		return fmt.Errorf("renew lease %s: %w", l.Key(), err)
	}
	value, err := json.Marshal(&l.Attrs)
	if err != nil {
		return err
	}
	tr, err := m.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)).
		Then(clientv3.OpPut(key, string(value), clientv3.WithLease(id))).Commit()
	if err != nil || !tr.Succeeded {
		m.revoke(ctx, id)
		if err == nil {
			err = errRace
		}
		return fmt.Errorf("renew lease %s: %w", l.Key(), err)
	}
	m.revoke(ctx, clientv3.LeaseID(kv.Lease))
	l.Expiration = time.Now().Add(m.opts.TTL)
	l.Asof = tr.Header.Revision
	return nil
}

// CompleteLease has nothing to do in etcd mode.
func (m *Manager) CompleteLease(context.Context, *subnet.Lease) error { return nil }
