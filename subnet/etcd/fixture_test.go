package etcd

import (
	"context"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/weftnet/weft/internal/testenv"
	"github.com/weftnet/weft/subnet"
)

// fixture is one fresh etcd per test, with a raw client to arrange and inspect the store behind the manager.
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

func recv(t *testing.T, ch <-chan []subnet.Event, what string) []subnet.Event {
	t.Helper()
	select {
	case b := <-ch:
		return b
	case <-time.After(20 * time.Second):
		t.Fatalf("no event batch within 20s: %s", what)
		return nil
	}
}
