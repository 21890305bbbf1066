package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/weftnet/weft/internal/testenv"
	"github.com/weftnet/weft/subnet"
	"github.com/weftnet/weft/subnet/subnettest"
)

type fixture struct {
	cli    *clientv3.Client
	ep     string
	prefix string
}

func setup(t *testing.T, config string) *fixture {
	t.Helper()
	ep := testenv.StartEtcd(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	f := &fixture{cli: cli, ep: ep, prefix: "/coreos.com/network"}
	if config != "" {
		if _, err := cli.Put(context.Background(), f.prefix+"/config", config); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *fixture) manager(t *testing.T, o Options) *Manager {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	o.Endpoints = []string{f.ep}
	m, err := New(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func attrs(ip string) *subnet.LeaseAttrs {
	return &subnet.LeaseAttrs{PublicIP: netip.MustParseAddr(ip), BackendType: "vxlan",
		BackendData: json.RawMessage(`{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:01"}`)}
}

func TestContract(t *testing.T) {
	subnettest.RunContract(t, func(t *testing.T) subnettest.Env {
		f := setup(t, `{"Network":"10.5.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan"}}`)
		return subnettest.Env{A: f.manager(t, Options{}), B: f.manager(t, Options{}), Remove: func(l subnet.Lease) {
			if _, err := f.cli.Delete(context.Background(), f.prefix+"/subnets/"+l.Key()); err != nil {
				t.Error(err)
			}
		}}
	})
}

func TestMissingAndBadConfig(t *testing.T) {
	f := setup(t, "")
	m := f.manager(t, Options{})
	ctx := context.Background()
	if _, err := m.GetNetworkConfig(ctx); !errors.Is(err, ErrConfigNotFound) {
		t.Fatalf("err = %v, want upstream's config-not-found error", err)
	}
	_, _ = f.cli.Put(ctx, f.prefix+"/config", `{"Network":"10.0.0.0/16","SubnetLen":31}`)
	if _, err := m.GetNetworkConfig(ctx); err == nil || !strings.Contains(err.Error(), "SubnetLen") {
		t.Fatalf("err = %v, want one naming SubnetLen", err)
	}
}

func TestUnreachableEtcdNamesEndpoint(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	m, err := New(ctx, Options{Endpoints: []string{"http://127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.GetNetworkConfig(ctx); err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("err = %v, want one naming the endpoint", err)
	}
}

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

func TestRenewExtendsTTL(t *testing.T) {
	f := setup(t, `{"Network":"10.5.0.0/16"}`)
	m := f.manager(t, Options{TTL: 60 * time.Second})
	ctx := context.Background()
	l, err := m.AcquireLease(ctx, attrs("192.0.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2100 * time.Millisecond)
	before := ttlOf(t, f, l)
	if err := m.RenewLease(ctx, l); err != nil {
		t.Fatal(err)
	}
	after := ttlOf(t, f, l)
	if after <= before {
		t.Fatalf("TTL %d after renew, %d before: not extended", after, before)
	}
}

func ttlOf(t *testing.T, f *fixture, l *subnet.Lease) int64 {
	resp, err := f.cli.Get(context.Background(), f.prefix+"/subnets/"+l.Key())
	if err != nil || len(resp.Kvs) == 0 {
		t.Fatalf("lease gone: %v", err)
	}
	ttl, err := f.cli.TimeToLive(context.Background(), clientv3.LeaseID(resp.Kvs[0].Lease))
	if err != nil {
		t.Fatal(err)
	}
	return ttl.TTL
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
