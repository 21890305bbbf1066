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

// The ENI contract against alisim through the real SDK over HTTP: i-alisim0003 is an ecs.g7.2xlarge
// (4 ENIs, 15 addresses each) on vsw-alisim0001.
func TestENIContractAlisim(t *testing.T) {
	aliyuntest.RunENIContract(t, func(t *testing.T) aliyuntest.ENIEnv {
		f := newFixture(t, sim.Timing{EntryPending: 3 * time.Second, EntryDeleting: 3 * time.Second, ENITransition: 2 * time.Second}, nil)
		if err := f.world.AddVPC("vpc-other", "10.0.0.0/8"); err != nil {
			t.Fatal(err)
		}
		if err := f.world.AddSecurityGroup("sg-othervpc", "vpc-other"); err != nil {
			t.Fatal(err)
		}
		return aliyuntest.ENIEnv{API: ecsClient(t, f), Instance: "i-alisim0003", InstanceType: "ecs.g7.2xlarge",
			VPC: "vpc-alisim0001", VSwitch: "vsw-alisim0001", OtherZoneVSwitch: "vsw-alisim0002", SecurityGroup: "sg-alisim0001", Transition: 2 * time.Second,
			Advance: f.clock.Advance,
			ConsoleDetach: func(id string) {
				if err := f.world.ConsoleDetach(id); err != nil {
					t.Fatal(err)
				}
			},
			FillVSwitch: func(id string, leave int) {
				if _, err := f.world.FillVSwitch(id, leave); err != nil {
					t.Fatal(err)
				}
			},
			ForeignSecurityGroup: "sg-othervpc", ForeignSecurityGroupError: "InvalidOperation.VpcMismatch"}
	})
}
