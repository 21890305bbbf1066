package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/weftnet/weft/subnet"
)

func TestStoredFormatAndTTL(t *testing.T) {
	f := setup(t, `{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}`)
	m := f.manager(t, Options{})
	ctx := context.Background()
	l, err := m.AcquireLease(ctx, attrs("192.0.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.cli.Get(ctx, f.prefix+"/subnets/"+l.Key())
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("lease key %s not stored: %v", l.Key(), err)
	}
	kv := resp.Kvs[0]
	want := `{"PublicIP":"192.0.2.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:01"}}`
	if string(kv.Value) != want {
		t.Errorf("stored %s\nwant   %s", kv.Value, want)
	}
	ttl, err := f.cli.TimeToLive(ctx, clientv3.LeaseID(kv.Lease))
	if err != nil || ttl.GrantedTTL != int64(LeaseTTL/time.Second) {
		t.Fatalf("etcd lease TTL %+v (%v), want 24h", ttl, err)
	}
	if time.Until(l.Expiration) < 23*time.Hour {
		t.Errorf("Expiration %v not ~24h ahead", l.Expiration)
	}
}

func TestReuseFromSubnetEnvAndReservation(t *testing.T) {
	f := setup(t, `{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}`)
	ctx := context.Background()
	env := filepath.Join(t.TempDir(), "subnet.env")
	if err := os.WriteFile(env, []byte("FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.77.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := f.manager(t, Options{SubnetFile: env}).AcquireLease(ctx, attrs("192.0.2.1"))
	if err != nil || l.Subnet != netip.MustParsePrefix("10.5.77.0/24") {
		t.Fatalf("lease %v (%v), want the subnet from subnet.env", l, err)
	}
	// A reservation (no TTL) goes only to the node with its PublicIP, and stays without TTL.
	_, _ = f.cli.Put(ctx, f.prefix+"/subnets/10.5.9.0-24", `{"PublicIP":"192.0.2.9","PublicIPv6":null}`)
	other, err := f.manager(t, Options{}).AcquireLease(ctx, attrs("192.0.2.2"))
	if err != nil || other.Subnet == netip.MustParsePrefix("10.5.9.0/24") {
		t.Fatalf("another node got the reserved subnet: %v %v", other, err)
	}
	r, err := f.manager(t, Options{}).AcquireLease(ctx, attrs("192.0.2.9"))
	if err != nil || r.Subnet != netip.MustParsePrefix("10.5.9.0/24") || !r.Expiration.IsZero() {
		t.Fatalf("reservation: %+v %v", r, err)
	}
	resp, _ := f.cli.Get(ctx, f.prefix+"/subnets/10.5.9.0-24")
	if resp.Kvs[0].Lease != 0 || !strings.Contains(string(resp.Kvs[0].Value), "vxlan") {
		t.Errorf("reservation rewritten wrongly: lease %d value %s", resp.Kvs[0].Lease, resp.Kvs[0].Value)
	}
}

func TestFullNetworkIsAClearError(t *testing.T) {
	f := setup(t, `{"Network":"10.5.0.0/24","SubnetLen":26}`) // subnets .64 .128 .192 only
	ctx := context.Background()
	for i := 1; i <= 3; i++ {
		if _, err := f.manager(t, Options{}).AcquireLease(ctx, attrs("192.0.2."+string(rune('0'+i)))); err != nil {
			t.Fatal(err)
		}
	}
	_, err := f.manager(t, Options{}).AcquireLease(ctx, attrs("192.0.2.4"))
	if !errors.Is(err, subnet.ErrNoFreeSubnet) || !strings.Contains(err.Error(), "10.5.0.0/24") {
		t.Fatalf("err = %v, want no free subnet naming the network", err)
	}
}

func TestConcurrentNodesNeverShare(t *testing.T) {
	f := setup(t, `{"Network":"10.5.0.0/24","SubnetLen":28}`) // 15 subnets for 12 racing nodes
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[netip.Prefix]string{}
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ip := netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)}).String()
			l, err := f.manager(t, Options{}).AcquireLease(ctx, attrs(ip))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if o, dup := got[l.Subnet]; dup {
				t.Errorf("%s and %s both got %v", o, ip, l.Subnet)
			}
			got[l.Subnet] = ip
		}(i)
	}
	wg.Wait()
	resp, _ := f.cli.Get(ctx, f.prefix+"/subnets/", clientv3.WithPrefix())
	if len(resp.Kvs) != 12 {
		t.Errorf("%d lease keys stored, want 12", len(resp.Kvs))
	}
}

func TestDualStack(t *testing.T) {
	f := setup(t, `{"Network":"10.5.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:5::/56"}`)
	ctx := context.Background()
	a := attrs("192.0.2.1")
	a.PublicIPv6 = netip.MustParseAddr("fd00:2::1")
	l, err := f.manager(t, Options{}).AcquireLease(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if !l.IPv6Subnet.IsValid() || l.IPv6Subnet.Bits() != 64 || !strings.Contains(l.Key(), "&fd00:5:0:") {
		t.Fatalf("dual-stack lease %v key %s", l.IPv6Subnet, l.Key())
	}
	resp, _ := f.cli.Get(ctx, f.prefix+"/subnets/"+l.Key())
	if len(resp.Kvs) != 1 || !strings.Contains(string(resp.Kvs[0].Value), `"PublicIPv6":"fd00:2::1"`) {
		t.Fatalf("stored dual-stack lease: %v", resp.Kvs)
	}
}

func TestReuseByPublicIPUpdatesAttrs(t *testing.T) {
	f := setup(t, `{"Network":"10.5.0.0/16"}`)
	ctx := context.Background()
	l, err := f.manager(t, Options{}).AcquireLease(ctx, attrs("192.0.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	a := attrs("192.0.2.1")
	a.BackendData = json.RawMessage(`{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:99"}`)
	again, err := f.manager(t, Options{}).AcquireLease(ctx, a) // a restarted daemon
	if err != nil || again.Subnet != l.Subnet {
		t.Fatalf("re-acquire: %v %v, want %v", again, err, l.Subnet)
	}
	resp, _ := f.cli.Get(ctx, f.prefix+"/subnets/", clientv3.WithPrefix())
	if len(resp.Kvs) != 1 || !strings.Contains(string(resp.Kvs[0].Value), "aa:bb:cc:dd:ee:99") || resp.Kvs[0].Lease == 0 {
		t.Fatalf("stored %v, want one key with the new VtepMAC and a TTL", resp.Kvs)
	}
}

// Upstream deletes this node's lease when it no longer fits the configuration, and allocates afresh.
func TestIncompatibleOwnLeaseReplaced(t *testing.T) {
	f := setup(t, `{"Network":"10.5.0.0/16","SubnetMin":"10.5.10.0","SubnetMax":"10.5.20.0"}`)
	ctx := context.Background()
	g, err := f.cli.Grant(ctx, 600)
	if err != nil {
		t.Fatal(err)
	}
	for key, ip := range map[string]string{"10.9.0.0-24": "192.0.2.1", "10.5.3.0-24": "192.0.2.1"} {
		v, _ := json.Marshal(attrs(ip))
		if _, err := f.cli.Put(ctx, f.prefix+"/subnets/"+key, string(v), clientv3.WithLease(g.ID)); err != nil {
			t.Fatal(err)
		}
	}
	l, err := f.manager(t, Options{}).AcquireLease(ctx, attrs("192.0.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := f.manager(t, Options{}).GetNetworkConfig(ctx)
	if !cfg.V4Range().Contains(l.Subnet) {
		t.Fatalf("got %v, want a subnet from 10.5.10.0 to 10.5.20.0", l.Subnet)
	}
	resp, _ := f.cli.Get(ctx, f.prefix+"/subnets/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Key) != f.prefix+"/subnets/"+l.Key() {
		t.Fatalf("keys %v, want only %s", resp.Kvs, l.Key())
	}
}

func TestSubnetEnvIgnoredWhenTakenOrOutside(t *testing.T) {
	f := setup(t, `{"Network":"10.5.0.0/16"}`)
	ctx := context.Background()
	dir := t.TempDir()
	node := 10
	for name, sn := range map[string]string{"taken": "10.5.7.0/24", "outside": "10.6.7.0/24", "wrong length": "10.5.8.0/25"} {
		node++
		env := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".env")
		if err := subnet.WriteEnvFile(env, subnet.Env{EnableIPv4: true, Network: netip.MustParsePrefix("10.5.0.0/16"),
			Subnet: netip.MustParsePrefix(sn), MTU: 1450}); err != nil {
			t.Fatal(err)
		}
		if name == "taken" {
			v, _ := json.Marshal(attrs("192.0.2.77"))
			_, _ = f.cli.Put(ctx, f.prefix+"/subnets/10.5.7.0-24", string(v))
		}
		l, err := f.manager(t, Options{SubnetFile: env}).AcquireLease(ctx, attrs(fmt.Sprintf("192.0.2.%d", node)))
		if err != nil {
			t.Fatal(err)
		}
		if l.Subnet.Overlaps(netip.MustParsePrefix(sn)) || l.Subnet.Bits() != 24 {
			t.Errorf("%s: got %v from a subnet.env naming %s", name, l.Subnet, sn)
		}
	}
}

func TestIPv6Only(t *testing.T) {
	f := setup(t, `{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:5::/56"}`)
	ctx := context.Background()
	a := &subnet.LeaseAttrs{PublicIPv6: netip.MustParseAddr("fd00:2::1"), BackendType: "host-gw"}
	l, err := f.manager(t, Options{}).AcquireLease(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if l.Subnet.IsValid() || !strings.HasPrefix(l.Key(), "0.0.0.0-0&fd00:5:0:") || !strings.HasSuffix(l.Key(), "::-64") {
		t.Fatalf("lease %+v key %s", l, l.Key())
	}
	resp, _ := f.cli.Get(ctx, f.prefix+"/subnets/"+l.Key())
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != `{"PublicIP":"0.0.0.0","PublicIPv6":"fd00:2::1","BackendType":"host-gw"}` {
		t.Fatalf("stored %v", resp.Kvs)
	}
	// Another IPv6-only node is told apart by its IPv6 address, not the shared 0.0.0.0.
	b := &subnet.LeaseAttrs{PublicIPv6: netip.MustParseAddr("fd00:2::2"), BackendType: "host-gw"}
	lb, err := f.manager(t, Options{}).AcquireLease(ctx, b)
	if err != nil || lb.IPv6Subnet == l.IPv6Subnet {
		t.Fatalf("second node: %v %v", lb, err)
	}
}

// Dual-stack nodes racing must not share either family's subnet, although their keys differ.
func TestConcurrentDualStackNeverShare(t *testing.T) {
	f := setup(t, `{"Network":"10.5.0.0/24","SubnetLen":28,"EnableIPv6":true,"IPv6Network":"fd00:5::/60"}`) // 15 and 15 subnets
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	got4, got6 := map[netip.Prefix]bool{}, map[netip.Prefix]bool{}
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			a := attrs(netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)}).String())
			a.PublicIPv6 = netip.AddrFrom16([16]byte{0xfd, 0, 15: byte(10 + i)})
			l, err := f.manager(t, Options{}).AcquireLease(ctx, a)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if got4[l.Subnet] || got6[l.IPv6Subnet] {
				t.Errorf("%v / %v handed out twice", l.Subnet, l.IPv6Subnet)
			}
			got4[l.Subnet], got6[l.IPv6Subnet] = true, true
		}(i)
	}
	wg.Wait()
	resp, _ := f.cli.Get(ctx, f.prefix+"/subnets/", clientv3.WithPrefix())
	if len(resp.Kvs) != 10 {
		t.Errorf("%d lease keys stored, want 10", len(resp.Kvs))
	}
}
