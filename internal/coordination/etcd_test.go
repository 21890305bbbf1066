package coordination_test

import (
	"context"
	"encoding/json"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/coordination"
	"github.com/weftnet/weft/internal/testenv"
	"github.com/weftnet/weft/subnet"
	"github.com/weftnet/weft/subnet/etcd"
)

func etcdStore(t *testing.T, env string) (*etcd.Manager, *coordination.Etcd) {
	t.Helper()
	ep := testenv.StartEtcd(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	m, err := etcd.New(ctx, etcd.Options{Endpoints: []string{ep}, SubnetFile: env})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Client().Put(ctx, m.Prefix()+"/config", `{"Network":"10.5.0.0/16","Backend":{"Type":"ali-vpc"}}`); err != nil {
		t.Fatal(err)
	}
	return m, coordination.NewEtcd(m.Client(), m.Prefix())
}

func attrs(ip string) *subnet.LeaseAttrs {
	return &subnet.LeaseAttrs{PublicIP: netip.MustParseAddr(ip), BackendType: "ali-vpc", BackendData: json.RawMessage(`{"InstanceID":"i-1"}`)}
}

// A status belongs to one incarnation of a lease: after the lease is deleted and taken again, the old "routed"
// must not make the new holder ready before the leader has seen its route.
func TestEtcdStatusFollowsLeaseIncarnation(t *testing.T) {
	env := filepath.Join(t.TempDir(), "subnet.env")
	m, c := etcdStore(t, env)
	ctx := context.Background()
	l, err := m.AcquireLease(ctx, attrs("192.0.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := c.Status(ctx, l); ok || err != nil {
		t.Fatalf("status before any was published: ok=%v err=%v", ok, err)
	}
	if err := c.Publish(ctx, l, coordination.Status{Routed: true}); err != nil {
		t.Fatal(err)
	}
	if st, ok, err := c.Status(ctx, l); !ok || err != nil || !st.Routed {
		t.Fatalf("published status read back as %+v ok=%v err=%v", st, ok, err)
	}
	// The status is the node's, keyed by its identity, not by its subnet.
	if r, _ := m.Client().Get(ctx, m.Prefix()+"/route-status/192.0.2.1"); len(r.Kvs) != 1 {
		t.Fatalf("no status under the node's identity: %v", r.Kvs)
	}
	// A renewal rewrites the lease key but keeps the incarnation.
	if err := m.RenewLease(ctx, l); err != nil {
		t.Fatal(err)
	}
	if st, ok, _ := c.Status(ctx, l); !ok || !st.Routed {
		t.Fatalf("status after a renewal: %+v ok=%v, want routed", st, ok)
	}
	cfg, _ := m.GetNetworkConfig(ctx)
	if err := subnet.WriteEnvFile(env, subnet.Env{EnableIPv4: true, Network: cfg.Network, Subnet: l.Subnet, MTU: 1450}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Client().Delete(ctx, m.Prefix()+"/subnets/"+l.Key()); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := c.Status(ctx, l); ok {
		t.Fatal("a deleted lease still has a status")
	}
	again, err := m.AcquireLease(ctx, attrs("192.0.2.1"))
	if err != nil || again.Subnet != l.Subnet {
		t.Fatalf("re-acquired %v (%v), want %v", again, err, l.Subnet)
	}
	if st, ok, _ := c.Status(ctx, again); ok {
		t.Fatalf("the new incarnation reads the old status %+v", st)
	}
	if err := c.Publish(ctx, again, coordination.Status{Reason: "RouteTableQuotaExceeded"}); err != nil {
		t.Fatal(err)
	}
	if st, ok, _ := c.Status(ctx, again); !ok || st.Routed || st.Reason != "RouteTableQuotaExceeded" {
		t.Fatalf("status %+v ok=%v, want the quota reason", st, ok)
	}
	if err := c.Forget(ctx, again); err != nil {
		t.Fatal(err)
	}
	if r, _ := m.Client().Get(ctx, m.Prefix()+"/route-status/192.0.2.1"); len(r.Kvs) != 0 {
		t.Fatal("Forget left the key behind")
	}
}

// A node that moved to another subnet keeps the status of its new lease when the old one is forgotten, and a
// status published for the old lease does not answer for the new one.
func TestEtcdStatusOfMovedNode(t *testing.T) {
	m, c := etcdStore(t, filepath.Join(t.TempDir(), "subnet.env"))
	ctx := context.Background()
	old := &subnet.Lease{EnableIPv4: true, Subnet: netip.MustParsePrefix("10.5.7.0/24"), Attrs: *attrs("192.0.2.9")}
	moved := &subnet.Lease{EnableIPv4: true, Subnet: netip.MustParsePrefix("10.5.8.0/24"), Attrs: *attrs("192.0.2.9")}
	for _, l := range []*subnet.Lease{old, moved} {
		b, _ := json.Marshal(l.Attrs)
		if _, err := m.Client().Put(ctx, m.Prefix()+"/subnets/"+l.Key(), string(b)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Publish(ctx, old, coordination.Status{Routed: true}); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := c.Status(ctx, moved); ok {
		t.Fatal("the old lease's status answers for the node's new lease")
	}
	if err := c.Publish(ctx, moved, coordination.Status{Reason: "RoutePending"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Forget(ctx, old); err != nil {
		t.Fatal(err)
	}
	if st, ok, _ := c.Status(ctx, moved); !ok || st.Reason != "RoutePending" {
		t.Fatalf("forgetting the old lease dropped the new one's status: %+v ok=%v", st, ok)
	}
}

// One leader at a time; when it resigns (its context ends) another candidate takes over.
func TestEtcdLeadHandsOver(t *testing.T) {
	_, c := etcdStore(t, filepath.Join(t.TempDir(), "subnet.env"))
	ctx := context.Background()
	ctxA, stopA := context.WithCancel(ctx)
	la, err := c.Lead(ctxA, "test", "a")
	if err != nil {
		t.Fatal(err)
	}
	won := make(chan context.Context, 1)
	go func() {
		lb, err := c.Lead(ctx, "test", "b")
		if err == nil {
			won <- lb
		}
	}()
	select {
	case <-won:
		t.Fatal("b leads while a does")
	case <-time.After(500 * time.Millisecond):
	}
	stopA()
	<-la.Done()
	select {
	case lb := <-won:
		if lb.Err() != nil {
			t.Fatal("b's leadership context already ended")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("b never took over after a resigned")
	}
}
