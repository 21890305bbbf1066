package eni

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/cloud/instancetype"
)

// enable_eni_trunking's values join the shared per-key table (config_test.go), kept here so the key's tests live
// beside it.
func init() {
	configKeyCases = append(configKeyCases,
		configKeyCase{key: "enable_eni_trunking", value: `true`, check: func(c Config) bool { return c.EnableENITrunking }},
		configKeyCase{key: "enable_eni_trunking", value: `false`, check: func(c Config) bool { return !c.EnableENITrunking }},
		configKeyCase{key: "enable_eni_trunking", value: `"true"`, errHas: []string{`Backend.enable_eni_trunking: "true": expected true or false`}},
		configKeyCase{key: "enable_eni_trunking", value: `1`, errHas: []string{"Backend.enable_eni_trunking: 1: expected true or false"}},
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
	// ecs.c7.4xlarge: EniTotalQuantity 31 - EniQuantity 8 = 23 members, weft plan's trunk figure.
	err = TrunkCheck(true, types["ecs.c7.4xlarge"])
	if err == nil || !strings.Contains(err.Error(), "ecs.c7.4xlarge supports 23 trunk member ENIs") || !strings.Contains(err.Error(), "not place pods on them yet") {
		t.Fatalf("trunking on a type with it: %v", err)
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
		"ecs.g7.2xlarge": "instance type ecs.g7.2xlarge supports 11 trunk member ENIs",
	} {
		d := agentDeps{cfg: cfg, cloud: trunkCloud{itype: itype}, meta: noMeta{}, m: newMetrics(nil)}
		d.identity.InstanceID = "i-a"
		_, err := startAgent(context.Background(), d)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", itype, err, want)
		}
	}
}
