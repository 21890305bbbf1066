package etcd

import (
	"context"
	"testing"

	"github.com/weftnet/weft/subnet"
)

// Hostile or broken leases in the store are never reported as peers: an unreadable value, a public IP that is no
// address, and a subnet the allocator would never hand out (another length, which overlaps valid leases, or one
// outside the Network). Valid leases around them are reported as usual.
func TestWatchLeasesSkipsHostileLeases(t *testing.T) {
	f := setup(t, `{"Network":"10.5.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan"}}`)
	m := f.manager(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := m.GetNetworkConfig(ctx); err != nil {
		t.Fatal(err)
	}
	good, err := m.AcquireLease(ctx, attrs("192.0.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	v := `{"PublicIP":"192.0.2.9","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:09"}}`
	for k, val := range map[string]string{
		"10.5.200.0-24": `{not json`,
		"10.5.201.0-24": `{"PublicIP":"999.1.1.1","BackendType":"vxlan"}`,
		"10.5.0.0-23":   v, // overlaps the /24s of 10.5.0.0 and 10.5.1.0
		"10.6.0.0-24":   v, // outside the Network
	} {
		if _, err := f.cli.Put(ctx, f.prefix+"/subnets/"+k, val); err != nil {
			t.Fatal(err)
		}
	}
	ch := make(chan []subnet.Event, 16)
	go func() { _ = m.WatchLeases(ctx, ch) }()
	snap := recv(t, ch, "snapshot")
	if len(snap) != 1 || snap[0].Lease.Key() != good.Key() {
		t.Fatalf("snapshot %+v, want only %s", snap, good.Key())
	}
	// One written after the watch started is skipped too, and a valid one still arrives.
	if _, err := f.cli.Put(ctx, f.prefix+"/subnets/10.5.4.0-22", v); err != nil {
		t.Fatal(err)
	}
	if _, err := f.cli.Put(ctx, f.prefix+"/subnets/10.5.77.0-24", v); err != nil {
		t.Fatal(err)
	}
	for {
		b := recv(t, ch, "the valid lease")
		for _, ev := range b {
			if ev.Lease.Subnet.Bits() != 24 {
				t.Fatalf("a misshapen lease was reported: %+v", ev)
			}
			if ev.Lease.Key() == "10.5.77.0-24" {
				return
			}
		}
	}
}
