package etcd

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

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
