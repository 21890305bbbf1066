package plugin

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weftnet/weft/internal/eni/datapath"
)

// An exclusive pod's limits go to the exclusive datapath and into ADD's record; CHECK asks the datapath about
// the runtimeConfig's limits, or the record's when the runtime passes none, and fails for other limits than
// ADD's; an empty block is no limit and no record.
func TestExclusiveBandwidth(t *testing.T) {
	e, x := exclusiveEnv(t)
	e.out.Reset()
	if err := e.p.Add(e.args("xb1", e.conf(withBandwidth(limited)))); err != nil {
		t.Fatalf("ADD with limits on an exclusive ENI: %v", err)
	}
	var res map[string]any
	if err := json.Unmarshal(e.out.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if got := x.xpods[datapath.HostVethName("xb1", "eth0")].Bandwidth; got != limitedLimits {
		t.Errorf("the exclusive datapath got limits %+v, want %+v", got, limitedLimits)
	}
	st, ok, err := loadState(filepath.Join(e.data, stateName("xb1")))
	if err != nil || !ok || st.Bandwidth == nil || *st.Bandwidth != limitedLimits || st.Exclusive == nil {
		t.Errorf("ADD's record %+v %v %v, want the limits and the ENI in it", st, ok, err)
	}
	if err := e.p.Check(e.args("xb1", e.conf(merge(withBandwidth(limited), map[string]any{"prevResult": res})))); err != nil {
		t.Errorf("CHECK with the runtimeConfig: %v", err)
	}
	if err := e.p.Check(e.args("xb1", prevConf(e, res))); err != nil {
		t.Errorf("CHECK without runtimeConfig (ADD's record): %v", err)
	}
	other := map[string]any{"ingressRate": 10000000, "ingressBurst": 1000}
	if err := e.p.Check(e.args("xb1", e.conf(merge(withBandwidth(other), map[string]any{"prevResult": res})))); err == nil {
		t.Error("CHECK with other limits than ADD's passed")
	}
	if err := e.p.Del(e.args("xb1", prevConf(e, res))); err != nil {
		t.Fatalf("DEL: %v", err)
	}

	e.out.Reset()
	if err := e.p.Add(e.args("xb2", e.conf(withBandwidth(map[string]any{})))); err != nil {
		t.Fatalf("ADD with an empty bandwidth block: %v", err)
	}
	if got := x.xpods[datapath.HostVethName("xb2", "eth0")].Bandwidth; !got.IsZero() {
		t.Errorf("an unlimited exclusive pod's datapath got %+v", got)
	}
	if b, _ := os.ReadFile(filepath.Join(e.data, stateName("xb2"))); strings.Contains(string(b), "Bandwidth") {
		t.Errorf("an unlimited exclusive pod's record: %s", b)
	}
}

// Limits the datapath cannot apply fail ADD, which gives the address back and leaves no record.
func TestExclusiveBandwidthFailureGivesBack(t *testing.T) {
	e, x := exclusiveEnv(t)
	x.addErr = errors.New("bandwidth limits: ingress limit: ifb weft-ifb-in: operation not supported")
	if err := e.p.Add(e.args("xb3", e.conf(withBandwidth(limited)))); err == nil || !strings.Contains(err.Error(), "ifb") {
		t.Fatalf("ADD: %v", err)
	}
	if len(e.weftd.holding()) != 0 || len(e.states()) != 0 {
		t.Fatalf("weftd holds %v, records %v", e.weftd.holding(), e.states())
	}
}
