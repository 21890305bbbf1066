package aliyun_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/cloud/aliyun/sim"
)

// A second client on the same registry (ali-vpc's RegisterNetwork retried, another client in the process) is
// built and counts into the same series as the first; before, NewClient failed with AlreadyRegisteredError.
func TestClientsShareMetricsOnOneRegistry(t *testing.T) {
	f := newFixture(t, sim.DefaultTiming, nil)
	reg := prometheus.NewRegistry()
	ctx := context.Background()
	var clients []*aliyun.Client
	for range 2 {
		clients = append(clients, f.client(t, nil, func(c *aliyun.Config) { c.Registerer = reg }))
	}
	for i, cl := range clients {
		for range i + 1 {
			if _, err := cl.RouteTables(ctx, "vpc-alisim0001"); err != nil {
				t.Fatalf("client %d: %v", i, err)
			}
		}
	}
	if n := testutil.ToFloat64(mustCounter(t, reg, "DescribeRouteTableList", "ok")); n != 3 {
		t.Fatalf("calls counted %v, want 1 + 2 from the two clients", n)
	}
	if n, err := testutil.GatherAndCount(reg, "weft_cloud_api_duration_seconds"); err != nil || n != 1 {
		t.Fatalf("latency series %d (%v), want one shared series", n, err)
	}
	// A different collector under the same name is an error, not a silent mix-up.
	other := prometheus.NewRegistry()
	other.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "weft_cloud_api_calls_total", Help: "not a counter vec"}))
	if _, err := aliyun.NewClient(aliyun.Config{Region: "cn-hangzhou", Registerer: other,
		Credentials: aliyun.Static{AccessKeyID: "k", AccessKeySecret: "s"}}); err == nil {
		t.Fatal("a clashing collector was accepted")
	}
}
