package etcd

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/weftnet/weft/subnet"
)

// A route status belongs to one incarnation of a lease: after the lease is deleted and taken again, the old
// "routed" must not make the new holder ready before the leader has seen its route.
func TestRouteStatusFollowsLeaseIncarnation(t *testing.T) {
	f := setup(t, `{"Network":"10.5.0.0/16"}`)
	env := filepath.Join(t.TempDir(), "subnet.env")
	m := f.manager(t, Options{SubnetFile: env})
	ctx := context.Background()
	l, err := m.AcquireLease(ctx, attrs("192.0.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := m.RouteStatus(ctx, l); ok || err != nil {
		t.Fatalf("status before any was published: ok=%v err=%v", ok, err)
	}
	if err := m.PublishRouteStatus(ctx, l, subnet.RouteStatus{Routed: true}); err != nil {
		t.Fatal(err)
	}
	if st, ok, err := m.RouteStatus(ctx, l); !ok || err != nil || !st.Routed {
		t.Fatalf("published status read back as %+v ok=%v err=%v", st, ok, err)
	}
	// A renewal rewrites the lease key but keeps the incarnation.
	if err := m.RenewLease(ctx, l); err != nil {
		t.Fatal(err)
	}
	if st, ok, _ := m.RouteStatus(ctx, l); !ok || !st.Routed {
		t.Fatalf("status after a renewal: %+v ok=%v, want routed", st, ok)
	}
	cfg, _ := m.GetNetworkConfig(ctx)
	if err := subnet.WriteEnvFile(env, subnet.Env{EnableIPv4: true, Network: cfg.Network, Subnet: l.Subnet, MTU: 1450}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.cli.Delete(ctx, f.prefix+"/subnets/"+l.Key()); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := m.RouteStatus(ctx, l); ok {
		t.Fatal("a deleted lease still has a route status")
	}
	again, err := m.AcquireLease(ctx, attrs("192.0.2.1"))
	if err != nil || again.Subnet != l.Subnet {
		t.Fatalf("re-acquired %v (%v), want %v", again, err, l.Subnet)
	}
	if st, ok, _ := m.RouteStatus(ctx, again); ok {
		t.Fatalf("the new incarnation reads the old status %+v", st)
	}
	if err := m.PublishRouteStatus(ctx, again, subnet.RouteStatus{Reason: "RouteTableQuotaExceeded"}); err != nil {
		t.Fatal(err)
	}
	if st, ok, _ := m.RouteStatus(ctx, again); !ok || st.Routed || st.Reason != "RouteTableQuotaExceeded" {
		t.Fatalf("status %+v ok=%v, want the quota reason", st, ok)
	}
	if err := m.ForgetRouteStatus(ctx, again); err != nil {
		t.Fatal(err)
	}
	if r, _ := f.cli.Get(ctx, f.prefix+"/route-status/"+again.Key()); len(r.Kvs) != 0 {
		t.Fatal("ForgetRouteStatus left the key behind")
	}
}
