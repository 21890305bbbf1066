package etcd

import (
	"context"
	"encoding/json"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/weftnet/weft/subnet"
)

var (
	_ subnet.LeaderElector    = (*Manager)(nil)
	_ subnet.RouteStatusStore = (*Manager)(nil)
)

// Lead campaigns in an etcd election under <prefix>/elections/<name>; the session's 5 s TTL makes a dead
// leader's key expire within seconds, so another node takes over.
func (m *Manager) Lead(ctx context.Context, name, id string) (context.Context, error) {
	s, err := concurrency.NewSession(m.cli, concurrency.WithTTL(5), concurrency.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("election %s: %w", name, err)
	}
	e := concurrency.NewElection(s, m.prefix+"/elections/"+name)
	if err := e.Campaign(ctx, id); err != nil {
		s.Close()
		return nil, fmt.Errorf("election %s: %w", name, err)
	}
	lctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-s.Done():
		case <-ctx.Done():
		}
		cancel()
		_ = e.Resign(context.Background())
		s.Close()
	}()
	return lctx, nil
}

func (m *Manager) statusKey(l *subnet.Lease) string { return m.prefix + "/route-status/" + l.Key() }

// PublishRouteStatus stores {"Routed":..,"Reason":..} at <prefix>/route-status/<lease key>.
func (m *Manager) PublishRouteStatus(ctx context.Context, l *subnet.Lease, st subnet.RouteStatus) error {
	b, _ := json.Marshal(st)
	if _, err := m.cli.Put(ctx, m.statusKey(l), string(b)); err != nil {
		return fmt.Errorf("publish route status of %s: %w", l.Key(), err)
	}
	return nil
}

// RouteStatus reads a node's published route status; ok is false when none was published for the lease as it
// is now: a status written before the lease's key was (re)created belongs to an earlier holder of the subnet.
func (m *Manager) RouteStatus(ctx context.Context, l *subnet.Lease) (subnet.RouteStatus, bool, error) {
	resp, err := m.cli.Txn(ctx).Then(clientv3.OpGet(m.statusKey(l)), clientv3.OpGet(m.subnetsDir()+l.Key())).Commit()
	if err != nil {
		return subnet.RouteStatus{}, false, fmt.Errorf("route status of %s: %w", l.Key(), err)
	}
	st, lease := resp.Responses[0].GetResponseRange().Kvs, resp.Responses[1].GetResponseRange().Kvs
	if len(st) == 0 || len(lease) == 0 || st[0].ModRevision < lease[0].CreateRevision {
		return subnet.RouteStatus{}, false, nil
	}
	var out subnet.RouteStatus
	if err := json.Unmarshal(st[0].Value, &out); err != nil {
		return out, false, fmt.Errorf("route status of %s: %w", l.Key(), err)
	}
	return out, true, nil
}

// ForgetRouteStatus deletes the status key of a removed lease.
func (m *Manager) ForgetRouteStatus(ctx context.Context, l *subnet.Lease) error {
	if _, err := m.cli.Delete(ctx, m.statusKey(l)); err != nil {
		return fmt.Errorf("forget route status of %s: %w", l.Key(), err)
	}
	return nil
}
