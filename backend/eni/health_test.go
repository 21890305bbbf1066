package eni

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/internal/eni/checkpoint"
	"github.com/weftnet/weft/internal/eni/pool"
)

// Three failed cloud calls in a row put the pool in degraded mode (it releases nothing); a vSwitch out of
// addresses, the instance's ENI limit or a cancelled call are states, not outages, and never do; one success
// ends it.
func TestCloudHealthDegradesThePool(t *testing.T) {
	clk := newKubeTestClock()
	p, err := pool.New(pool.Config{MinIdle: 1, TargetIdle: 2, MaxIdle: 3, Cooldown: 30 * time.Second, ReclaimBatch: 1,
		Limits: pool.Limits{InstanceType: "t", ENIs: 2, AddrsPerENI: 4}, Instance: "i-1"}, clk,
		checkpoint.Store{Path: filepath.Join(t.TempDir(), "cp.json")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := &Network{pool: p, d: agentDeps{m: newMetrics(nil)}}
	outage := errors.New("503 ServiceUnavailable")
	states := []error{fmt.Errorf("create: %w", &aliyun.APIError{Code: "InvalidVSwitchId.IpNotEnough"}),
		&aliyun.APIError{Code: "EniPerInstanceLimitExceeded"}, fmt.Errorf("call: %w", context.Canceled)}
	for i := 0; i < 5; i++ {
		for _, e := range states {
			n.cloudResult("X", e)
		}
	}
	if p.Stats().Degraded {
		t.Fatal("states (vSwitch exhausted, ENI limit, cancelled) made the pool degraded")
	}
	n.cloudResult("X", outage)
	n.cloudResult("X", outage)
	if p.Stats().Degraded {
		t.Fatal("degraded after two failures")
	}
	n.cloudResult("X", outage)
	if !p.Stats().Degraded {
		t.Fatal("not degraded after three failures in a row")
	}
	if _, why := n.Ready(); why == "" {
		t.Error("Ready gives no reason while the cloud fails")
	}
	n.cloudResult("X", nil)
	if p.Stats().Degraded {
		t.Fatal("still degraded after a success")
	}
}
