package aliyun_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/weftnet/weft/cloud/aliyun/aliyuntest"
	"github.com/weftnet/weft/cloud/aliyun/sim"
)

// The route contract against alisim through the real SDK over HTTP.
func TestRouteContractAlisim(t *testing.T) {
	aliyuntest.RunRouteContract(t, func(t *testing.T) aliyuntest.Env {
		f := newFixture(t, sim.Timing{EntryPending: 3 * time.Second, EntryDeleting: 3 * time.Second, ENITransition: time.Second}, nil)
		f.world.SetTiming(sim.Timing{EntryPending: 3 * time.Second, EntryDeleting: 3 * time.Second})
		cl := ecsClient(t, f)
		return aliyuntest.Env{API: cl, Table: table, Hop1: "i-alisim0001", Hop2: "i-alisim0002", Pending: 3 * time.Second,
			Advance: f.clock.Advance, SetQuota: func(q int) {
				if err := f.world.SetQuota(table, q); err != nil {
					t.Fatal(err)
				}
			}, VSwitchSubnet: netip.MustParsePrefix("192.168.1.0/25")}
	})
}

// The route-entry quota contract against alisim's Quota Center through the real SDK over HTTP.
func TestQuotaContractAlisim(t *testing.T) {
	aliyuntest.RunQuotaContract(t, func(t *testing.T) aliyuntest.QuotaEnv {
		f := newFixture(t, sim.DefaultTiming, nil)
		return aliyuntest.QuotaEnv{API: quotasClient(t, f), SetQuota: func(q int) {
			if err := f.world.SetQuota(table, q); err != nil {
				t.Fatal(err)
			}
		}}
	})
}
