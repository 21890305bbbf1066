package coordination

import (
	"context"
	"encoding/json"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/weftnet/weft/subnet"
)

// Etcd coordinates through the cluster's etcd: elections under <prefix>/elections/<name> and each node's status
// at <prefix>/route-status/<node>, where node is subnet.Lease.Node (the public address in etcd mode).
type Etcd struct {
	cli    *clientv3.Client
	prefix string
}

// NewEtcd uses cli under prefix (--etcd-prefix).
func NewEtcd(cli *clientv3.Client, prefix string) *Etcd { return &Etcd{cli: cli, prefix: prefix} }

var _ Coordinator = (*Etcd)(nil)

// Lead campaigns in an etcd election; the session's 5 s TTL makes a dead leader's key expire within seconds, so
// another node takes over.
func (e *Etcd) Lead(ctx context.Context, name, id string) (context.Context, error) {
	s, err := concurrency.NewSession(e.cli, concurrency.WithTTL(5), concurrency.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("election %s: %w", name, err)
	}
	el := concurrency.NewElection(s, e.prefix+"/elections/"+name)
	if err := el.Campaign(ctx, id); err != nil {
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
		_ = el.Resign(context.Background())
		s.Close()
	}()
	return lctx, nil
}

// stored is the value at a status key: the status and the lease it was published for.
type stored struct {
	Routed bool
	Reason string `json:",omitempty"`
	Lease  string // lease key; with the key's CreateRevision it names the incarnation
}

func (e *Etcd) statusKey(l *subnet.Lease) string { return e.prefix + "/route-status/" + l.Node() }

// Publish stores the status with the lease key it belongs to.
func (e *Etcd) Publish(ctx context.Context, l *subnet.Lease, st Status) error {
	b, _ := json.Marshal(stored{Routed: st.Routed, Reason: st.Reason, Lease: l.Key()})
	if _, err := e.cli.Put(ctx, e.statusKey(l), string(b)); err != nil {
		return fmt.Errorf("publish status of node %s: %w", l.Node(), err)
	}
	return nil
}

// Status reads the node's status in one transaction with its lease key: a status for another lease, or written
// before the lease key was (re)created, belongs to an earlier incarnation and does not count.
func (e *Etcd) Status(ctx context.Context, l *subnet.Lease) (Status, bool, error) {
	resp, err := e.cli.Txn(ctx).Then(clientv3.OpGet(e.statusKey(l)), clientv3.OpGet(e.prefix+"/subnets/"+l.Key())).Commit()
	if err != nil {
		return Status{}, false, fmt.Errorf("status of node %s: %w", l.Node(), err)
	}
	st, lease := resp.Responses[0].GetResponseRange().Kvs, resp.Responses[1].GetResponseRange().Kvs
	if len(st) == 0 || len(lease) == 0 || st[0].ModRevision < lease[0].CreateRevision {
		return Status{}, false, nil
	}
	var v stored
	if err := json.Unmarshal(st[0].Value, &v); err != nil {
		return Status{}, false, fmt.Errorf("status of node %s: %w", l.Node(), err)
	}
	if v.Lease != l.Key() {
		return Status{}, false, nil
	}
	return Status{Routed: v.Routed, Reason: v.Reason}, true, nil
}

// Forget deletes the status of a removed lease, unless the node has meanwhile been published under another
// lease (a node that moved to a new subnet keeps its new status).
func (e *Etcd) Forget(ctx context.Context, l *subnet.Lease) error {
	k := e.statusKey(l)
	resp, err := e.cli.Get(ctx, k)
	if err != nil {
		return fmt.Errorf("forget status of node %s: %w", l.Node(), err)
	}
	if len(resp.Kvs) == 0 {
		return nil
	}
	var v stored
	if json.Unmarshal(resp.Kvs[0].Value, &v) == nil && v.Lease != l.Key() {
		return nil
	}
	_, err = e.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(k), "=", resp.Kvs[0].ModRevision)).
		Then(clientv3.OpDelete(k)).Commit()
	if err != nil {
		return fmt.Errorf("forget status of node %s: %w", l.Node(), err)
	}
	return nil
}
