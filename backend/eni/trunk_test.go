package eni

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/cloud/instancetype"
	"github.com/weftnet/weft/internal/eni/cniproto"
	"github.com/weftnet/weft/internal/eni/pool"
)

// enable_eni_trunking's values join the shared per-key table (config_test.go), kept here so the key's tests live
// beside it.
func init() {
	configKeyCases = append(configKeyCases,
		configKeyCase{key: "enable_eni_trunking", value: `true`, check: func(c Config) bool { return c.EnableENITrunking }},
		configKeyCase{key: "enable_eni_trunking", value: `false`, check: func(c Config) bool { return !c.EnableENITrunking }},
		configKeyCase{key: "enable_eni_trunking", value: `"true"`, errHas: []string{`Backend.enable_eni_trunking: "true": expected true or false`}},
		configKeyCase{key: "enable_eni_trunking", value: `1`, errHas: []string{"Backend.enable_eni_trunking: 1: expected true or false"}},
		configKeyCase{key: "trunk_link", value: `"macvlan"`, check: func(c Config) bool { return c.TrunkLink == TrunkLinkMACVLAN }},
		configKeyCase{key: "trunk_link", value: `"vlan"`, check: func(c Config) bool { return c.TrunkLink == TrunkLinkVLAN }},
		configKeyCase{key: "trunk_link", value: `"802.1q"`, errHas: []string{`Backend.trunk_link: "802.1q": expected "vlan" (802.1Q, the service's trunking) or "macvlan" (alisim's fabric)`}},
		configKeyCase{key: "trunk_link", value: `1`, errHas: []string{"Backend.trunk_link: 1: expected a string"}},
	)
}

func TestTrunkCheck(t *testing.T) {
	types := map[string]instancetype.Type{}
	for _, ty := range instancetype.Builtin() {
		types[ty.ID] = ty
	}
	if err := TrunkCheck(false, types["ecs.c6.4xlarge"]); err != nil {
		t.Fatalf("trunking off: %v", err)
	}
	err := TrunkCheck(true, types["ecs.c6.4xlarge"])
	if err == nil || !strings.Contains(err.Error(), "instance type ecs.c6.4xlarge does not support ENI trunking") ||
		!strings.Contains(err.Error(), "Backend.enable_eni_trunking") {
		t.Fatalf("trunking on a type without it: %v", err)
	}
	if err := TrunkCheck(true, types["ecs.c7.4xlarge"]); err != nil {
		t.Fatalf("trunking on a type with it: %v", err)
	}
}

// Shared mode with trunking is refused naming Mode and the label; exclusive passes, and so does trunking off.
func TestTrunkModeCheck(t *testing.T) {
	err := TrunkModeCheck(true, ModeShared)
	if err == nil || !strings.Contains(err.Error(), `runs Mode "shared"`) || !strings.Contains(err.Error(), "Backend.Mode") ||
		!strings.Contains(err.Error(), LabelENIMode) || !strings.Contains(err.Error(), "Backend.enable_eni_trunking") {
		t.Fatalf("shared mode with trunking: %v", err)
	}
	if err := TrunkModeCheck(true, ModeExclusive); err != nil {
		t.Fatal(err)
	}
	if err := TrunkModeCheck(false, ModeShared); err != nil {
		t.Fatal(err)
	}
}

// The daemon's exclusive capacity with trunking is weft plan's figure (instancetype.ExclusiveTrunkPods) for every
// built-in type with trunking: EniQuantity - 2 ordinary ENIs (the trunk takes a slot) + the members.
func TestTrunkLimitsArePlansFigure(t *testing.T) {
	checked := 0
	for _, ty := range instancetype.Builtin() {
		if !ty.TrunkSupported || ty.ENIs < 2 {
			continue
		}
		checked++
		l := TrunkLimits(ty)
		if got, want := l.Pods(), ty.ExclusiveTrunkPods(); got != want || want == 0 {
			t.Errorf("%s: the daemon holds %d exclusive pods with trunking, weft plan says %d", ty.ID, got, want)
		}
		if l.Members != ty.ENIsWithTrunk-ty.ENIs || l.Ordinary() != ty.ENIs-2 || !l.Exclusive || l.AddrsPerENI != 1 {
			t.Errorf("%s: limits %+v", ty.ID, l)
		}
	}
	if checked == 0 {
		t.Fatal("no built-in type with trunking")
	}
	types := map[string]instancetype.Type{}
	for _, ty := range instancetype.Builtin() {
		types[ty.ID] = ty
	}
	// ecs.c7.xlarge: 3 ENIs, 7 in all: 1 ordinary exclusive ENI + 4 members; ecs.c7.4xlarge 6 + 23.
	if got := TrunkLimits(types["ecs.c7.xlarge"]).Pods(); got != 5 {
		t.Errorf("ecs.c7.xlarge: %d, want 5", got)
	}
	if got := TrunkLimits(types["ecs.c7.4xlarge"]).Pods(); got != 29 {
		t.Errorf("ecs.c7.4xlarge: %d, want 29", got)
	}
	msg := (&pool.LimitError{Limits: TrunkLimits(types["ecs.c7.xlarge"]), InUse: 5}).Error()
	if !strings.Contains(msg, "ecs.c7.xlarge holds 5 pods on exclusive ENIs (3 ENIs - the primary - the trunk ENI + 4 trunk member ENIs); 5 in use") {
		t.Errorf("limit error: %s", msg)
	}
}

// Ordinary ENIs until their slots are full, then the trunk once, then members up to the type's figure.
func TestNextSlot(t *testing.T) {
	l := pool.Limits{InstanceType: "ecs.c7.xlarge", ENIs: 5, AddrsPerENI: 1, Exclusive: true, Members: 4}
	for _, c := range []struct {
		trunking          bool
		ordinary, members int
		trunk             bool
		want, err         string
	}{
		{false, 5, 0, false, slotOrdinary, ""},
		{true, 0, 0, false, slotOrdinary, ""},
		{true, 1, 0, false, slotTrunk, ""},
		{true, 1, 0, true, slotMember, ""},
		{true, 1, 3, true, slotMember, ""},
		{true, 1, 4, true, "", "4 of 4 trunk member ENIs in use"},
		{true, 2, 4, true, "", "no ENI slot left"},
		{true, 0, 2, true, slotOrdinary, ""}, // an ordinary slot freed: ordinary again
	} {
		got, err := nextSlot(l, c.trunking, c.ordinary, c.members, c.trunk)
		if got != c.want || (err == nil) != (c.err == "") || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("nextSlot(%v, %d, %d, %v) = %q, %v; want %q, %q", c.trunking, c.ordinary, c.members, c.trunk, got, err, c.want, c.err)
		}
	}
}

// The pool never sees the trunk ENI, and trunks come first when the agent sets ENIs up.
func TestTrunkLeftOutOfThePool(t *testing.T) {
	list := []aliyun.ENI{{ID: "eni-m", Type: typeMember, TrunkID: "eni-t"}, {ID: "eni-o", Type: "Secondary"}, {ID: "eni-t", Type: typeTrunk}}
	got := trunksFirst(list)
	if got[0].ID != "eni-t" || len(got) != 3 || list[0].ID != "eni-m" {
		t.Fatalf("trunksFirst %v (input %v)", got, list)
	}
	if inPool(list[2]) || !inPool(list[0]) || !inPool(list[1]) || !isMember(list[0]) || isMember(list[1]) {
		t.Fatal("inPool / isMember")
	}
}

// A member's reply carries its trunk's MAC, its VLAN id and the configured link kind; an ordinary ENI's none; a
// member whose trunk is not usable is NotReady.
func TestTrunkReply(t *testing.T) {
	n := &Network{exclusive: true, trunking: true, cfg: Config{TrunkLink: TrunkLinkMACVLAN, MTU: 1400}, enis: map[string]*eniState{
		"eni-t": {ENI: aliyun.ENI{ID: "eni-t", Type: typeTrunk, MAC: "00:16:3e:00:00:aa"}, usable: true},
	}}
	m := &eniState{ENI: aliyun.ENI{ID: "eni-m", Type: typeMember, TrunkID: "eni-t", VLAN: 3, MAC: "00:16:3e:00:00:bb"}}
	var r cniproto.AddReply
	if err := n.trunkReply(&r, m); err != nil {
		t.Fatal(err)
	}
	if r.ENI.Trunk == nil || *r.ENI.Trunk != (cniproto.TrunkInfo{MAC: "00:16:3e:00:00:aa", VLAN: 3, Link: "macvlan"}) || r.MTU != 1400 {
		t.Fatalf("member reply %+v", r)
	}
	r = cniproto.AddReply{}
	if err := n.trunkReply(&r, &eniState{ENI: aliyun.ENI{ID: "eni-o"}}); err != nil || r.ENI.Trunk != nil {
		t.Fatalf("ordinary reply %+v %v", r, err)
	}
	n.enis["eni-t"].usable = false
	if err := n.trunkReply(&r, m); err == nil || !strings.Contains(err.Error(), "trunk ENI eni-t is not usable") {
		t.Fatalf("trunk not usable: %v", err)
	}
}

// trunkCloud answers the two calls startAgent makes before the trunking check; any other call panics (the
// embedded nil Cloud), which would show the check came too late.
type trunkCloud struct {
	Cloud
	itype string
}

func (c trunkCloud) Instance(ctx context.Context, id string) (aliyun.Instance, error) {
	return aliyun.Instance{ID: id, Type: c.itype, Zone: "cn-hangzhou-h", VSwitchID: "vsw-a", VPCID: "vpc-a"}, nil
}

func (c trunkCloud) InstanceTypes(ctx context.Context, ids ...string) ([]aliyun.InstanceType, error) {
	return aliyun.BuiltinInstanceTypes(), nil
}

type noMeta struct{}

func (noMeta) Get(ctx context.Context, path string) (string, error) {
	return "", errors.New("no metadata")
}

// A node whose type does not support trunking refuses to start with enable_eni_trunking, naming its type.
func TestStartAgentRefusesTrunkingNamingTheType(t *testing.T) {
	cfg, err := ParseConfig(configWith(t, `{"enable_eni_trunking":true}`))
	if err != nil {
		t.Fatal(err)
	}
	cfg.VSwitches = map[string][]string{"cn-hangzhou-h": {"vsw-a"}}
	for itype, want := range map[string]string{
		"ecs.c6.4xlarge": "instance type ecs.c6.4xlarge does not support ENI trunking",
	} {
		d := agentDeps{cfg: cfg, cloud: trunkCloud{itype: itype}, meta: noMeta{}, m: newMetrics(nil)}
		d.identity.InstanceID = "i-a"
		_, err := startAgent(context.Background(), d)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", itype, err, want)
		}
	}
}

// A member serves pods while its trunk is this node's and usable on the host, with its vSwitch's gateway; not
// with trunking off, on another instance, or with its trunk not usable.
func TestMemberUsable(t *testing.T) {
	sw := aliyun.VSwitch{ID: "vsw-a", CIDR: netip.MustParsePrefix("192.168.0.0/24")}
	n := &Network{trunking: true, instance: "i-a", d: agentDeps{meta: noMeta{}}, enis: map[string]*eniState{
		"eni-t": {ENI: aliyun.ENI{ID: "eni-t", Type: typeTrunk}, usable: true},
	}}
	m := aliyun.ENI{ID: "eni-m", Type: typeMember, TrunkID: "eni-t", InstanceID: "i-a", VSwitchID: "vsw-a", MAC: "00:16:3e:00:00:bb"}
	st := &eniState{}
	if ok, why := n.memberUsable(context.Background(), st, m, sw); !ok || st.gateway != netip.MustParseAddr("192.168.0.253") {
		t.Fatalf("usable member: %v %q, gateway %v", ok, why, st.gateway)
	}
	for want, mod := range map[string]func(){
		"enable_eni_trunking is false":       func() { n.trunking = false },
		"a member on instance i-b":           func() { m.InstanceID = "i-b" },
		"trunk ENI eni-t is not usable":      func() { n.enis["eni-t"].usable = false },
		"its vSwitch vsw-a is unknown":       func() { sw.CIDR = netip.Prefix{} },
		"trunk ENI eni-x is not usable here": func() { m.TrunkID = "eni-x" },
	} {
		saved, savedSW := m, sw
		mod()
		ok, why := n.memberUsable(context.Background(), &eniState{}, m, sw)
		if want == "trunk ENI eni-x is not usable here" {
			want = "trunk ENI eni-x is not usable"
		}
		if ok || !strings.Contains(why, want) {
			t.Errorf("%s: %v %q", want, ok, why)
		}
		m, sw, n.trunking, n.enis["eni-t"].usable = saved, savedSW, true, true
	}
}
