package eni

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/weftnet/weft/backend"
	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/cloud/instancetype"
	"github.com/weftnet/weft/internal/eni/checkpoint"
	"github.com/weftnet/weft/internal/eni/cniproto"
	"github.com/weftnet/weft/internal/eni/pool"
)

// The exclusive mode's keys join configKeyCases (TestParseConfigKeys, TestKeyCasesCoverEveryKey).
func init() {
	configKeyCases = append(configKeyCases,
		configKeyCase{key: "Mode", value: `"exclusive"`, check: func(c Config) bool { return c.Mode == ModeExclusive }},
		configKeyCase{key: "Mode", value: `"shared"`, check: func(c Config) bool { return c.Mode == ModeShared }},
		configKeyCase{key: "Mode", value: `null`, check: func(c Config) bool { return c.Mode == ModeShared }},
		configKeyCase{key: "Mode", value: `"ENIOnly"`, errHas: []string{`Backend.Mode: "ENIOnly": expected "shared" or "exclusive"`}},
		configKeyCase{key: "Mode", value: `1`, errHas: []string{"Backend.Mode: 1: expected a string"}},
		configKeyCase{key: "exclusive_warm_enis", value: `2`, check: func(c Config) bool { return c.ExclusiveWarmENIs == 2 }},
		configKeyCase{key: "exclusive_warm_enis", value: `0`, errHas: []string{"Backend.exclusive_warm_enis: 0"}},
		configKeyCase{key: "exclusive_warm_enis", value: `-1`, errHas: []string{"Backend.exclusive_warm_enis: -1"}},
		configKeyCase{key: "host_stack_cidrs", value: `["192.168.0.0/16","172.16.0.10/32"]`, check: func(c Config) bool {
			return reflect.DeepEqual(c.HostStackCIDRs, []netip.Prefix{netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("172.16.0.10/32")})
		}},
		configKeyCase{key: "host_stack_cidrs", value: `["192.168.0.1/16"]`, errHas: []string{"Backend.host_stack_cidrs", `not "192.168.0.1/16"`}},
		configKeyCase{key: "host_stack_cidrs", value: `["0.0.0.0/0"]`, errHas: []string{"Backend.host_stack_cidrs", "not 0.0.0.0/0"}},
		configKeyCase{key: "host_stack_cidrs", value: `"10.0.0.0/8"`, errHas: []string{"Backend.host_stack_cidrs", "a list of IPv4 prefixes"}},
		configKeyCase{key: "host_stack_cidrs", value: `["fd00::/8"]`, errHas: []string{"Backend.host_stack_cidrs", `not "fd00::/8"`}},
		configKeyCase{key: "host_stack_cidrs", value: `["1.0.0.0/8","2.0.0.0/8","3.0.0.0/8","4.0.0.0/8","5.0.0.0/8","6.0.0.0/8","7.0.0.0/8","8.0.0.0/8",` +
			`"9.0.0.0/8","10.0.0.0/8","11.0.0.0/8","12.0.0.0/8","13.0.0.0/8","14.0.0.0/8","15.0.0.0/8","16.0.0.0/8","17.0.0.0/8","18.0.0.0/8",` +
			`"19.0.0.0/8","20.0.0.0/8","21.0.0.0/8","22.0.0.0/8","23.0.0.0/8","24.0.0.0/8","25.0.0.0/8","26.0.0.0/8","27.0.0.0/8","28.0.0.0/8",` +
			`"29.0.0.0/8","30.0.0.0/8","31.0.0.0/8","32.0.0.0/8","33.0.0.0/8"]`, errHas: []string{"Backend.host_stack_cidrs: 33 prefixes, expected at most 32"}},
	)
}

func TestNodeMode(t *testing.T) {
	for _, c := range []struct {
		configured string
		labels     map[string]string
		want, err  string
	}{
		{"", nil, ModeShared, ""},
		{ModeShared, nil, ModeShared, ""},
		{ModeExclusive, nil, ModeExclusive, ""},
		{ModeShared, map[string]string{LabelENIMode: "exclusive"}, ModeExclusive, ""},
		{ModeExclusive, map[string]string{LabelENIMode: "shared"}, ModeShared, ""},
		{ModeShared, map[string]string{"other": "exclusive"}, ModeShared, ""},
		{ModeShared, map[string]string{LabelENIMode: "Exclusive"}, "", `node label weft.io/eni-mode="Exclusive": expected "shared" or "exclusive"`},
	} {
		got, err := NodeMode(c.configured, c.labels)
		if got != c.want || (err == nil) != (c.err == "") || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("NodeMode(%q, %v) = %q, %v; want %q, %q", c.configured, c.labels, got, err, c.want, c.err)
		}
	}
}

// The daemon's exclusive capacity is weft plan's eni-exclusive figure (instancetype.ExclusiveENIPods) for every
// built-in type, and the pool, so sized, plans whole ENIs (no secondary address) up to it and refuses the pod
// beyond it with a LimitError saying exclusive.
func TestExclusiveLimitsArePlansFigure(t *testing.T) {
	for _, ty := range instancetype.Builtin() {
		if ty.ENIs < 2 {
			continue
		}
		if got, want := ExclusiveLimits(ty.ID, ty.ENIs).Pods(), ty.ExclusiveENIPods(); got != want {
			t.Errorf("%s: the daemon holds %d exclusive pods, weft plan says %d", ty.ID, got, want)
		}
	}
	if got := ExclusiveLimits("ecs.c7.4xlarge", 8).Pods(); got != 7 {
		t.Errorf("ecs.c7.4xlarge: %d exclusive pods, want 7 (the README's figure)", got)
	}
	cfg := Defaults()
	pc := pool.Config{Cooldown: cfg.Cooldown, ReclaimBatch: 1, Instance: "i-1"}
	exclusiveSizing(&pc, cfg, ExclusiveLimits("ecs.e2e.eni3", 3))
	if err := pc.Validate(); err != nil {
		t.Fatal(err)
	}
	if pc.MinIdle != 1 || pc.TargetIdle != 1 || pc.MaxIdle != 1 {
		t.Errorf("exclusive sizing %+v, want one warm ENI", pc)
	}
}

func TestSharedPodsLeftRefusesTheSwitch(t *testing.T) {
	enis := []aliyun.ENI{{ID: "eni-1", PrimaryIP: netip.MustParseAddr("10.0.0.5"), Secondary: []netip.Addr{netip.MustParseAddr("10.0.0.6")}}}
	rec := func(ip string, st checkpoint.State) checkpoint.Record {
		return checkpoint.Record{IP: netip.MustParseAddr(ip), ENI: "eni-1", State: st, PodNamespace: "default", PodName: "p" + ip}
	}
	if err := sharedPodsLeft([]checkpoint.Record{rec("10.0.0.5", checkpoint.Assigned), rec("10.0.0.6", checkpoint.Cooldown)}, enis); err != nil {
		t.Fatalf("an exclusive pod and a cooling address: %v", err)
	}
	err := sharedPodsLeft([]checkpoint.Record{rec("10.0.0.6", checkpoint.Assigned)}, enis)
	if err == nil || !strings.Contains(err.Error(), "default/p10.0.0.6 (10.0.0.6 on eni-1)") || !strings.Contains(err.Error(), "drain the node") {
		t.Fatalf("a shared pod left: %v", err)
	}
}

// The exclusive reply: the mode, the ENI's primary as the pod's address, and the host routes: the node's address,
// the Service CIDR, host_stack_cidrs; a shared reply is left as it was.
func TestExclusiveReply(t *testing.T) {
	n := &Network{exclusive: true, cfg: Config{ServiceCIDR: netip.MustParsePrefix("10.96.0.0/12"),
		HostStackCIDRs: []netip.Prefix{netip.MustParsePrefix("172.16.0.0/16")}},
		d: agentDeps{deps: backend.Deps{ExtIface: &backend.ExternalInterface{IfaceAddr: netip.MustParseAddr("192.168.0.10")}}}}
	e := &eniState{ENI: aliyun.ENI{ID: "eni-1", PrimaryIP: netip.MustParseAddr("192.168.0.40")}}
	r := cniproto.AddReply{IP: e.PrimaryIP}
	n.exclusiveReply(&r, e)
	want := []netip.Prefix{netip.MustParsePrefix("192.168.0.10/32"), netip.MustParsePrefix("10.96.0.0/12"), netip.MustParsePrefix("172.16.0.0/16")}
	if r.Mode != ModeExclusive || r.ENI.PrimaryIP != e.PrimaryIP || !reflect.DeepEqual(r.HostRoutes, want) {
		t.Fatalf("exclusive reply %+v", r)
	}
	n.exclusive = false
	r = cniproto.AddReply{IP: e.PrimaryIP}
	n.exclusiveReply(&r, e)
	if r.Mode != "" || r.HostRoutes != nil || r.ENI.PrimaryIP.IsValid() {
		t.Fatalf("shared reply changed: %+v", r)
	}
}
