package etcd

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weftnet/weft/subnet"
)

// A deleted own lease is noticed, and re-acquiring with the subnet.env the daemon wrote gets the same subnet back,
// which the own-lease watch reports as added again.
func TestOwnLeaseDeletedThenReacquired(t *testing.T) {
	f := setup(t, `{"Network":"10.5.0.0/16"}`)
	env := filepath.Join(t.TempDir(), "run", "flannel", "subnet.env")
	m := f.manager(t, Options{SubnetFile: env})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l, err := m.AcquireLease(ctx, attrs("192.0.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := m.GetNetworkConfig(ctx)
	if err := subnet.WriteEnvFile(env, subnet.Env{EnableIPv4: true, Network: cfg.Network, Subnet: l.Subnet, MTU: 1450}); err != nil {
		t.Fatal(err)
	}
	own := make(chan []subnet.Event, 16)
	go func() { _ = m.WatchLease(ctx, l, own) }()
	if _, err := f.cli.Delete(ctx, f.prefix+"/subnets/"+l.Key()); err != nil {
		t.Fatal(err)
	}
	if b := recv(t, own, "removal"); len(b) != 1 || b[0].Type != subnet.EventRemoved || b[0].Lease.Subnet != l.Subnet {
		t.Fatalf("got %+v, want the lease removed", b)
	}
	if err := m.RenewLease(ctx, l); !errors.Is(err, subnet.ErrLeaseNotFound) {
		t.Fatalf("renew of a deleted lease: %v, want ErrLeaseNotFound", err)
	}
	again, err := m.AcquireLease(ctx, attrs("192.0.2.1"))
	if err != nil || again.Subnet != l.Subnet {
		t.Fatalf("re-acquired %v (%v), want %v from subnet.env", again, err, l.Subnet)
	}
	if b := recv(t, own, "re-creation"); len(b) != 1 || b[0].Type != subnet.EventAdded || b[0].Lease.Subnet != l.Subnet {
		t.Fatalf("got %+v, want the lease added again", b)
	}
}

// An expired etcd lease deletes the key; the own-lease watch reports it.
func TestOwnLeaseExpiryNoticed(t *testing.T) {
	f := setup(t, `{"Network":"10.5.0.0/16"}`)
	m := f.manager(t, Options{TTL: 2 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l, err := m.AcquireLease(ctx, attrs("192.0.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	own := make(chan []subnet.Event, 16)
	go func() { _ = m.WatchLease(ctx, l, own) }()
	if b := recv(t, own, "expiry"); b[0].Type != subnet.EventRemoved || b[0].Lease.Subnet != l.Subnet {
		t.Fatalf("got %+v, want the lease removed", b)
	}
	resp, _ := f.cli.Get(ctx, f.prefix+"/subnets/"+l.Key())
	if len(resp.Kvs) != 0 {
		t.Fatal("the key outlived its TTL")
	}
}

// A lease watch whose revision was compacted lists again and reports what changed meanwhile.
func TestWatchLeasesSurvivesCompaction(t *testing.T) {
	f := setup(t, `{"Network":"10.5.0.0/16"}`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	la, err := f.manager(t, Options{}).AcquireLease(ctx, attrs("192.0.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	w := f.manager(t, Options{})
	var watches atomic.Int32 // watches started, each after a listing
	w.startRev = func(rev int64) int64 {
		if watches.Add(1) > 1 {
			return rev + 1
		}
		// Before the first watch starts: a lease goes away and history is compacted past it.
		dr, err := f.cli.Delete(ctx, f.prefix+"/subnets/"+la.Key())
		if err != nil {
			t.Error(err)
		}
		if _, err := f.cli.Compact(ctx, dr.Header.Revision); err != nil {
			t.Error(err)
		}
		// Compact(r) keeps revision r itself, so only a start below the delete's revision is compacted: the
		// listing's own revision is.
		return rev
	}
	ch := make(chan []subnet.Event, 16)
	go func() { _ = w.WatchLeases(ctx, ch) }()
	if b := recv(t, ch, "snapshot"); len(b) != 1 || b[0].Lease.Subnet != la.Subnet {
		t.Fatalf("snapshot %+v", b)
	}
	if b := recv(t, ch, "removal found by re-listing"); len(b) != 1 || b[0].Type != subnet.EventRemoved || b[0].Lease.Subnet != la.Subnet {
		t.Fatalf("got %+v, want %v removed", b, la.Subnet)
	}
	lb, err := f.manager(t, Options{}).AcquireLease(ctx, attrs("192.0.2.2"))
	if err != nil {
		t.Fatal(err)
	}
	if b := recv(t, ch, "addition after the re-list"); len(b) != 1 || b[0].Type != subnet.EventAdded || b[0].Lease.Subnet != lb.Subnet {
		t.Fatalf("got %+v, want %v added", b, lb.Subnet)
	}
	if n := watches.Load(); n != 2 {
		t.Fatalf("%d watches started, want 2: the first must break on the compacted revision and be followed by a re-list", n)
	}
}
