package daemon

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/internal/testenv"
	"github.com/weftnet/weft/subnet"
	"github.com/weftnet/weft/subnet/subnettest"
)

// movingManager re-acquires every lease on another subnet, as a store would after someone took the old one.
type movingManager struct{ subnet.Manager }

func (m movingManager) AcquireLease(ctx context.Context, a *subnet.LeaseAttrs) (*subnet.Lease, error) {
	l, err := m.Manager.AcquireLease(ctx, a)
	if err != nil {
		return nil, err
	}
	l.Subnet = netip.MustParsePrefix("10.5.200.0/24")
	return l, nil
}

func testConfig(t *testing.T) *subnet.Config {
	t.Helper()
	cfg, err := subnet.ParseConfig([]byte(`{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}`))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// A revoked lease that comes back on another subnet cannot be kept: keepLease returns an error (the daemon
// returns it and exits 1 for its supervisor) instead of exiting the process from library code.
func TestKeepLeaseReturnsErrorWhenTheSubnetMoves(t *testing.T) {
	f := subnettest.NewFake(testConfig(t))
	sm := movingManager{f.Manager()}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := f.Manager().AcquireLease(ctx, &subnet.LeaseAttrs{PublicIP: netip.MustParseAddr("192.0.2.1"), BackendType: "vxlan"})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- keepLease(ctx, sm, l, time.Minute) }()
	time.Sleep(100 * time.Millisecond) // let the own-lease watch start; a removal before it is reported too
	f.RemoveLease(*l)
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "10.5.200.0-24") {
			t.Fatalf("keepLease = %v, want an error naming the new subnet", err)
		}
	case <-ctx.Done():
		t.Fatal("keepLease did not give up on a lease that moved")
	}
}

// keepLease ends quietly when its context does (a clean stop is not an error).
func TestKeepLeaseStopsWithContext(t *testing.T) {
	f := subnettest.NewFake(testConfig(t))
	ctx, cancel := context.WithCancel(context.Background())
	l, err := f.Manager().AcquireLease(ctx, &subnet.LeaseAttrs{PublicIP: netip.MustParseAddr("192.0.2.1"), BackendType: "vxlan"})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- keepLease(ctx, f.Manager(), l, time.Minute) }()
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("keepLease after cancel = %v, want nil", err)
	}
}

// --ip-blackhole-route installs real blackhole routes (RTN_BLACKHOLE) for both families through the handle.
func TestBlackholeRoutes(t *testing.T) {
	_, h := testenv.NewNetns(t)
	l := &subnet.Lease{Subnet: netip.MustParsePrefix("10.5.3.0/24"), IPv6Subnet: netip.MustParsePrefix("fd00:5:0:3::/64")}
	if err := addBlackholeRoutes(h, l); err != nil {
		t.Fatal(err)
	}
	if err := addBlackholeRoutes(h, l); err != nil {
		t.Fatalf("second run (idempotent): %v", err)
	}
	for fam, want := range map[int]string{netlink.FAMILY_V4: "10.5.3.0/24", netlink.FAMILY_V6: "fd00:5:0:3::/64"} {
		rs, err := h.RouteListFiltered(fam, &netlink.Route{Type: unix.RTN_BLACKHOLE}, netlink.RT_FILTER_TYPE)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rs {
			if r.Dst != nil {
				got = append(got, r.Dst.String())
			}
		}
		if strings.Join(got, ",") != want {
			t.Errorf("family %d blackhole routes %v, want %s", fam, got, want)
		}
	}
}
