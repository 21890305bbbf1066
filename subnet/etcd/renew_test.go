package etcd

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/weftnet/weft/subnet"
)

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

func TestRenewRefusesLeaseTakenOver(t *testing.T) {
	f := setup(t, `{"Network":"10.5.0.0/16"}`)
	ctx := context.Background()
	m := f.manager(t, Options{})
	l, err := m.AcquireLease(ctx, attrs("192.0.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	v, _ := json.Marshal(attrs("192.0.2.2"))
	_, _ = f.cli.Put(ctx, f.prefix+"/subnets/"+l.Key(), string(v))
	if err := m.RenewLease(ctx, l); !errors.Is(err, subnet.ErrLeaseNotFound) {
		t.Fatalf("renew: %v, want ErrLeaseNotFound", err)
	}
	resp, _ := f.cli.Get(ctx, f.prefix+"/subnets/"+l.Key())
	if !strings.Contains(string(resp.Kvs[0].Value), "192.0.2.2") {
		t.Fatalf("the other node's lease was overwritten: %s", resp.Kvs[0].Value)
	}
}
