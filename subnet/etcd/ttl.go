package etcd

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/klog/v2"
)

// grant creates the etcd lease that will carry a key's TTL (Options.TTL, 24 h by default).
func (m *Manager) grant(ctx context.Context) (clientv3.LeaseID, error) {
	g, err := m.cli.Grant(ctx, int64(m.opts.TTL/time.Second))
	if err != nil {
		return 0, fmt.Errorf("grant an etcd lease of %v: %w", m.opts.TTL, err)
	}
	return g.ID, nil
}

// revoke drops an etcd lease no key needs any more (deleting any key still bound to it); a failure is only
// logged, since the lease expires on its own. It runs even when ctx has ended, to clean up after a cancelled call.
func (m *Manager) revoke(ctx context.Context, id clientv3.LeaseID) {
	if id == 0 {
		return
	}
	if _, err := m.cli.Revoke(context.WithoutCancel(ctx), id); err != nil {
		klog.V(2).Infof("revoke etcd lease %x: %v (it expires on its own)", id, err)
	}
}
