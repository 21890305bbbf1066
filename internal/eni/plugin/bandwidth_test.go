package plugin

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/vishvananda/netlink"

	"github.com/weftnet/weft/internal/bandwidth"
	"github.com/weftnet/weft/internal/eni/datapath"
)

// limited is runtimeConfig.bandwidth as containerd passes a pod annotated 40M in and 20M out.
var limited = map[string]any{"ingressRate": 40000000, "ingressBurst": uint64(math.MaxUint32), "egressRate": 20000000,
	"egressBurst": uint64(math.MaxUint32)}

var limitedLimits = bandwidth.Limits{IngressRate: 40e6, IngressBurst: math.MaxUint32, EgressRate: 20e6, EgressBurst: math.MaxUint32}

func withBandwidth(bw any) map[string]any {
	return map[string]any{"capabilities": map[string]bool{"bandwidth": true}, "runtimeConfig": map[string]any{"bandwidth": bw}}
}

func merge(ms ...map[string]any) map[string]any {
	out := map[string]any{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func TestAddPassesBandwidth(t *testing.T) {
	e := newEnv(t)
	e.out.Reset()
	if err := e.p.Add(e.args("bw1", e.conf(withBandwidth(limited)))); err != nil {
		t.Fatal(err)
	}
	var res map[string]any
	if err := json.Unmarshal(e.out.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	veth := datapath.HostVethName("bw1", "eth0")
	if got := e.dp.pods[veth].Bandwidth; got != limitedLimits {
		t.Errorf("the datapath got limits %+v, want %+v", got, limitedLimits)
	}
	st, ok, err := loadState(filepath.Join(e.data, stateName("bw1")))
	if err != nil || !ok || st.Bandwidth == nil || *st.Bandwidth != limitedLimits {
		t.Errorf("ADD's record %+v %v %v, want the limits in it", st, ok, err)
	}
	// CHECK as the runtime runs it (the same runtimeConfig) and as one that passes none (ADD's record).
	if err := e.p.Check(e.args("bw1", e.conf(merge(withBandwidth(limited), map[string]any{"prevResult": res})))); err != nil {
		t.Errorf("CHECK with the runtimeConfig: %v", err)
	}
	if err := e.p.Check(e.args("bw1", prevConf(e, res))); err != nil {
		t.Errorf("CHECK without runtimeConfig (ADD's record): %v", err)
	}
	// CHECK with other limits than ADD applied asks the datapath about those, which it does not have.
	other := map[string]any{"ingressRate": 10000000, "ingressBurst": 1000}
	if err := e.p.Check(e.args("bw1", e.conf(merge(withBandwidth(other), map[string]any{"prevResult": res})))); err == nil {
		t.Error("CHECK with other limits than ADD's passed")
	}
	// Unlimited pods: no limits to the datapath, none in the record.
	e.out.Reset()
	if err := e.p.Add(e.args("bw2", e.conf(withBandwidth(map[string]any{})))); err != nil {
		t.Fatal(err)
	}
	if got := e.dp.pods[datapath.HostVethName("bw2", "eth0")].Bandwidth; !got.IsZero() {
		t.Errorf("an unlimited pod's datapath got %+v", got)
	}
	if b, _ := os.ReadFile(filepath.Join(e.data, stateName("bw2"))); strings.Contains(string(b), "Bandwidth") {
		t.Errorf("an unlimited pod's record: %s", b)
	}
}

// A runtimeConfig.bandwidth the plugin cannot take is the net conf's error, naming the field, before weftd is
// asked for an address.
func TestAddRefusesBadBandwidth(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		bw   any
		want string
	}{
		{map[string]any{"ingressRate": 40000000}, "ingressRate 40000000 without ingressBurst"},
		{map[string]any{"ingressRate": -1, "ingressBurst": 1}, "ingressRate -1: expected a whole number"},
		{map[string]any{"egressRate": 1.5e3, "egressBurst": 8.5}, "egressBurst 8.5"},
		{map[string]any{"egressRate": "40M", "egressBurst": 1}, `egressRate "40M"`},
		{map[string]any{"egressRate": 5e15, "egressBurst": 1}, "egressRate 5000000000000000: expected bits per second"},
		{map[string]any{"ingressrate": 1000, "ingressBurst": 1}, `"ingressrate": unknown field`},
		{"40M", "runtimeConfig.bandwidth: not a JSON object"},
		{[]any{1}, "runtimeConfig.bandwidth: not a JSON object"},
	} {
		err := e.p.Add(e.args("bad", e.conf(withBandwidth(c.bw))))
		te := cniErr(t, err)
		if te.Code != types.ErrInvalidNetworkConfig || !strings.Contains(te.Msg, c.want) {
			t.Errorf("%v: %+v, want code 7 saying %q", c.bw, te, c.want)
		}
	}
	if err := e.p.Add(e.args("bad", e.conf(map[string]any{"runtimeConfig": "x"}))); err == nil ||
		!strings.Contains(err.Error(), `"runtimeConfig"`) {
		t.Errorf("runtimeConfig a string: %v", err)
	}
	if r := e.weftd.requests(); len(r) != 0 {
		t.Errorf("weftd was asked %v", r)
	}
}

func TestStateBandwidthRefusesGarbage(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "wen000000000000.json")
	if err := os.WriteFile(p, []byte(`{"IP":"10.0.1.7","Table":1003,"MTU":1500,"Bandwidth":{"ingressRate":5}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadState(p); err == nil || !strings.Contains(err.Error(), "ingressRate 5") {
		t.Errorf("a record with broken limits: %v", err)
	}
}

// With the real datapath: the qdiscs ADD puts on the two veth ends, CHECK's verdicts, DEL leaving nothing.
func TestKernelBandwidth(t *testing.T) {
	k := newKernelEnv(t)
	before := hostState(t, k.host)
	conf := k.conf(withBandwidth(limited))
	k.out.Reset()
	if err := k.run(t, k.p.Add, k.args(t, "kb1", conf)); err != nil {
		t.Fatal(err)
	}
	var res map[string]any
	if err := json.Unmarshal(k.out.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	veth := datapath.HostVethName("kb1", "eth0")
	hl, err := k.host.LinkByName(veth)
	if err != nil {
		t.Fatal(err)
	}
	qs, _ := k.host.QdiscList(hl)
	found := false
	for _, q := range qs {
		if tbf, ok := q.(*netlink.Tbf); ok && q.Attrs().Parent == netlink.HANDLE_ROOT && tbf.Rate == 5e6 && q.Attrs().Handle == datapath.ShapingHandle {
			found = true
		}
	}
	if !found {
		t.Errorf("qdiscs of %s: %v, want the ingress tbf at 5e6 bytes/s", veth, qs)
	}
	checkConf := k.conf(merge(withBandwidth(limited), map[string]any{"prevResult": res}))
	if err := k.run(t, k.p.Check, k.args(t, "kb1", checkConf)); err != nil {
		t.Fatalf("CHECK: %v", err)
	}
	// The host veth's qdisc removed by hand: CHECK says so.
	for _, q := range qs {
		if q.Attrs().Parent == netlink.HANDLE_ROOT {
			if err := k.host.QdiscDel(q); err != nil {
				t.Fatal(err)
			}
		}
	}
	err = k.run(t, k.p.Check, k.args(t, "kb1", checkConf))
	if err == nil || !strings.Contains(err.Error(), "ingress limit on "+veth+": missing") {
		t.Errorf("CHECK without the ingress qdisc: %v", err)
	}
	if err := k.run(t, k.p.Del, k.args(t, "kb1", checkConf)); err != nil {
		t.Fatal(err)
	}
	sameState(t, "ADD then DEL", before, hostState(t, k.host))

	// A rate tbf cannot shape fails ADD after weftd answered: nothing stays, the address goes back.
	k.out.Reset()
	err = k.run(t, k.p.Add, k.args(t, "kb2", k.conf(withBandwidth(map[string]any{"egressRate": 1000, "egressBurst": 1}))))
	if te := cniErr(t, err); !strings.Contains(te.Msg, "egress rate 1000 bit/s: below") {
		t.Errorf("ADD at 1k bit/s: %+v", te)
	}
	sameState(t, "a refused rate", before, hostState(t, k.host))
	if h := k.weftd.holding(); len(h) != 0 {
		t.Errorf("weftd still holds %v", h)
	}
	if st := k.states(); len(st) != 0 {
		t.Errorf("records left: %v", st)
	}
}
