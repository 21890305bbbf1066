package subnettest

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/weftnet/weft/subnet"
)

// Env is what the contract suite needs from a manager implementation: two node views of one fresh store
// serving the config {"Network":"10.5.0.0/16","SubnetLen":24} (IPv4 only), and a way to delete a lease the way
// an operator or an expiry would.
type Env struct {
	A, B   subnet.Manager
	Remove func(l subnet.Lease)
}

// RunContract checks the behaviour every subnet.Manager must share.
func RunContract(t *testing.T, newEnv func(t *testing.T) Env) {
	attrs := func(ip string) *subnet.LeaseAttrs {
		return &subnet.LeaseAttrs{PublicIP: netip.MustParseAddr(ip), BackendType: "vxlan"}
	}
	ctx := func(t *testing.T) context.Context {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t.Cleanup(cancel)
		return c
	}
	// acquireAndWatch takes a lease for 192.0.2.1 through A and starts B's watch of all leases (ended with the
	// test); it returns the lease, the watch's context, its channel and the snapshot it sent first.
	acquireAndWatch := func(t *testing.T, e Env, c context.Context) (*subnet.Lease, context.Context, chan []subnet.Event, []subnet.Event) {
		t.Helper()
		la, err := e.A.AcquireLease(c, attrs("192.0.2.1"))
		if err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithCancel(c)
		t.Cleanup(cancel)
		ch := make(chan []subnet.Event, 16)
		go func() { _ = e.B.WatchLeases(wctx, ch) }()
		return la, wctx, ch, next(t, ch)
	}

	t.Run("config", func(t *testing.T) {
		e := newEnv(t)
		cfg, err := e.A.GetNetworkConfig(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Network != netip.MustParsePrefix("10.5.0.0/16") || cfg.SubnetLen != 24 || cfg.BackendType == "" {
			t.Fatalf("config %+v", cfg)
		}
	})

	t.Run("acquire is stable per public IP and distinct per node", func(t *testing.T) {
		e := newEnv(t)
		c := ctx(t)
		la, err := e.A.AcquireLease(c, attrs("192.0.2.1"))
		if err != nil {
			t.Fatal(err)
		}
		if !netip.MustParsePrefix("10.5.0.0/16").Contains(la.Subnet.Addr()) || la.Subnet.Bits() != 24 {
			t.Fatalf("subnet %v outside the network", la.Subnet)
		}
		if la.Subnet.Addr() == netip.MustParseAddr("10.5.0.0") {
			t.Fatalf("the network's first subnet %v must not be handed out (SubnetMin)", la.Subnet)
		}
		again, err := e.A.AcquireLease(c, attrs("192.0.2.1"))
		if err != nil || again.Subnet != la.Subnet {
			t.Fatalf("re-acquire gave %v (%v), want %v", again, err, la.Subnet)
		}
		lb, err := e.B.AcquireLease(c, attrs("192.0.2.2"))
		if err != nil {
			t.Fatal(err)
		}
		if lb.Subnet == la.Subnet {
			t.Fatalf("two nodes got the same subnet %v", la.Subnet)
		}
		prev, err := e.B.PreviousLease(c, attrs("192.0.2.1"))
		if err != nil || prev == nil || prev.Subnet != la.Subnet {
			t.Fatalf("PreviousLease = %v, %v; want %v", prev, err, la.Subnet)
		}
		if none, err := e.B.PreviousLease(c, attrs("192.0.2.9")); err != nil || none != nil {
			t.Fatalf("PreviousLease of an unknown node = %v, %v", none, err)
		}
		if err := e.A.RenewLease(c, la); err != nil {
			t.Fatalf("renew: %v", err)
		}
	})

	t.Run("watch sees a snapshot, additions and removals", func(t *testing.T) {
		e := newEnv(t)
		c := ctx(t)
		la, wctx, ch, snap := acquireAndWatch(t, e, c)
		if len(snap) != 1 || snap[0].Type != subnet.EventAdded || snap[0].Lease.Subnet != la.Subnet ||
			snap[0].Lease.Attrs.PublicIP != netip.MustParseAddr("192.0.2.1") {
			t.Fatalf("snapshot %+v", snap)
		}
		lb, err := e.B.AcquireLease(c, attrs("192.0.2.2"))
		if err != nil {
			t.Fatal(err)
		}
		if ev := waitFor(t, ch, lb.Subnet, subnet.EventAdded); ev.Lease.Attrs.BackendType != "vxlan" {
			t.Fatalf("added event %+v", ev)
		}
		own := make(chan []subnet.Event, 16)
		go func() { _ = e.A.WatchLease(wctx, la, own) }()
		// Whether the removal comes before or after the own-lease watch starts, it must be reported.
		e.Remove(*la)
		waitFor(t, ch, la.Subnet, subnet.EventRemoved)
		waitFor(t, own, la.Subnet, subnet.EventRemoved)
		if err := e.A.RenewLease(c, la); !errors.Is(err, subnet.ErrLeaseNotFound) {
			t.Fatalf("renewing a removed lease: %v, want subnet.ErrLeaseNotFound", err)
		}
		// The node takes a lease again; everyone's watch sees it.
		again, err := e.A.AcquireLease(c, attrs("192.0.2.1"))
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, ch, again.Subnet, subnet.EventAdded)
	})

	t.Run("new attributes on re-acquire reach the watchers", func(t *testing.T) {
		e := newEnv(t)
		c := ctx(t)
		la, wctx, ch, _ := acquireAndWatch(t, e, c)
		own := make(chan []subnet.Event, 16)
		go func() { _ = e.A.WatchLease(wctx, la, own) }()
		changed := attrs("192.0.2.1")
		changed.BackendData = json.RawMessage(`{"VNI":1,"VtepMAC":"0e:00:00:00:00:42"}`)
		if _, err := e.A.AcquireLease(c, changed); err != nil {
			t.Fatal(err)
		}
		for _, w := range []<-chan []subnet.Event{ch, own} {
			for {
				ev := waitFor(t, w, la.Subnet, subnet.EventAdded)
				if string(ev.Lease.Attrs.BackendData) == string(changed.BackendData) {
					break
				}
			}
		}
		got, err := e.B.PreviousLease(c, attrs("192.0.2.1"))
		if err != nil || got == nil || string(got.Attrs.BackendData) != string(changed.BackendData) {
			t.Fatalf("stored lease %+v (%v), want the new BackendData", got, err)
		}
	})

	t.Run("nodes never share a subnet", func(t *testing.T) {
		e := newEnv(t)
		c := ctx(t)
		seen := map[netip.Prefix]bool{}
		for i := 1; i <= 20; i++ {
			m := e.A
			if i%2 == 0 {
				m = e.B
			}
			l, err := m.AcquireLease(c, attrs(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}).String()))
			if err != nil {
				t.Fatal(err)
			}
			if seen[l.Subnet] {
				t.Fatalf("%v handed out twice", l.Subnet)
			}
			seen[l.Subnet] = true
		}
	})
}

func next(t *testing.T, ch <-chan []subnet.Event) []subnet.Event {
	t.Helper()
	select {
	case b := <-ch:
		return b
	case <-time.After(20 * time.Second):
		t.Fatal("no event batch within 20s")
		return nil
	}
}

func waitFor(t *testing.T, ch <-chan []subnet.Event, sn netip.Prefix, typ subnet.EventType) subnet.Event {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case b := <-ch:
			for _, e := range b {
				if e.Lease.Subnet == sn && e.Type == typ {
					return e
				}
			}
		case <-deadline:
			t.Fatalf("no %v event for %v within 20s", typ, sn)
		}
	}
}
