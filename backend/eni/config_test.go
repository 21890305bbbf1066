package eni

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func readConfigTestdata(t testing.TB, name string) json.RawMessage {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseConfigFull(t *testing.T) {
	c, err := ParseConfig(readConfigTestdata(t, "full.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		VSwitches:      map[string][]string{"cn-hangzhou-h": {"vsw-bp1h1", "vsw-bp1h2"}, "cn-hangzhou-i": {"vsw-bp1i1"}},
		VSwitchPolicy:  PolicyOrdered,
		SecurityGroups: []string{"sg-bp1a", "sg-bp1b", "sg-bp1c"}, // security_group first, the duplicate gone
		ENITags:        map[string]string{"team": "net", "env": "prod"},
		MinPoolSize:    3, WarmPoolTarget: 6, MaxPoolSize: 12,
		IdleIPReclaimAfter: 15 * time.Minute, IdleIPReclaimBatchSize: 4, IdleIPReclaimJitterFactor: 0.25,
		Cooldown: time.Minute, IPReservationTTL: 2 * time.Minute, IPStack: "ipv4", ServiceCIDR: netip.MustParsePrefix("10.96.0.0/12"),
		ClusterID: "c-prod-1", RegionID: "cn-hangzhou", VPCID: "vpc-bp1v",
		RouteTableBase: 2000, RulePriorityToPod: 600, RulePriorityFromPod: 2100,
		Checkpoint: "/var/lib/weft/eni/cp.json", Socket: "/run/weft/eni2.sock", ENIGCGrace: 20 * time.Minute, MTU: 1500,
		AccessKeyID: "LTAIexample", AccessKeySecret: "s3cr3t-value",
		Mode: ModeShared, ExclusiveWarmENIs: 1, TrunkLink: TrunkLinkVLAN,
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got\n%#v\nwant\n%#v", c.toWire(), want.toWire())
	}
}

func TestParseConfigMinimalTakesDefaults(t *testing.T) {
	c, err := ParseConfig(readConfigTestdata(t, "minimal.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := Defaults()
	want.VSwitches = map[string][]string{"cn-hangzhou-h": {"vsw-bp1h1"}}
	want.SecurityGroups = []string{"sg-bp1a"}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got %v\nwant %v", c, want)
	}
	// The defaults the design fixes, spelled out once more so that a change to Defaults is a visible decision.
	d := Defaults()
	if d.MinPoolSize != 2 || d.WarmPoolTarget != 5 || d.MaxPoolSize != 10 || d.IdleIPReclaimAfter != 10*time.Minute ||
		d.IdleIPReclaimBatchSize != 5 || d.IdleIPReclaimJitterFactor != 0.1 || d.Cooldown != 30*time.Second ||
		d.RouteTableBase != 1000 || d.RulePriorityToPod != 512 || d.RulePriorityFromPod != 2048 ||
		d.ENIGCGrace != 10*time.Minute || d.Checkpoint != "/var/lib/weft/eni/checkpoint.json" ||
		d.Socket != "/run/weft/eni.sock" || d.VSwitchPolicy != "random" || d.IPStack != "ipv4" || d.MTU != 0 {
		t.Fatalf("Defaults() = %v", d)
	}
}

// A Terway eni_conf (its chart's pool sizes, min 0 and max 5) carries over as it is.
func TestParseConfigTerway(t *testing.T) {
	c, err := ParseConfig(readConfigTestdata(t, "terway.json"))
	if err != nil {
		t.Fatal(err)
	}
	if c.MinPoolSize != 0 || c.WarmPoolTarget != 5 || c.MaxPoolSize != 5 || c.IdleIPReclaimAfter != 5*time.Minute ||
		c.IdleIPReclaimBatchSize != 10 || c.VSwitchPolicy != PolicyRandom || c.ServiceCIDR.String() != "172.21.0.0/20" ||
		!slices.Equal(c.SecurityGroups, []string{"sg-bp1t"}) {
		t.Fatalf("%v", c)
	}
}

// configWith is minimal.json with the members of extra added (or replaced).
func configWith(t testing.TB, extra string) json.RawMessage {
	t.Helper()
	base := map[string]json.RawMessage{}
	if err := json.Unmarshal(readConfigTestdata(t, "minimal.json"), &base); err != nil {
		t.Fatal(err)
	}
	add := map[string]json.RawMessage{}
	if err := json.Unmarshal([]byte(extra), &add); err != nil {
		t.Fatalf("test input %s: %v", extra, err)
	}
	for k, v := range add {
		base[k] = v
	}
	b, _ := json.Marshal(base)
	return b
}

// configKeyCase is one value of one key: check, when the value is accepted, says whether the Config is right; when it
// is refused, the error must contain every one of errHas.
type configKeyCase struct {
	key    string
	value  string
	check  func(Config) bool
	errHas []string
}

var configKeyCases = []configKeyCase{
	{key: "Type", value: `"eni"`, check: func(c Config) bool { return true }},
	{key: "Type", value: `"vxlan"`, errHas: []string{`Backend.Type: "vxlan": expected "eni"`}},
	{key: "Type", value: `3`, errHas: []string{"Backend.Type: 3: expected a string"}},

	{key: "vswitches", value: `{"cn-hangzhou-h":["vsw-a1","vsw-a2","vsw-a1"],"cn-hangzhou-i":[]}`, check: func(c Config) bool {
		return reflect.DeepEqual(c.VSwitches, map[string][]string{"cn-hangzhou-h": {"vsw-a1", "vsw-a2"}})
	}},
	{key: "vswitches", value: `{}`, errHas: []string{"Backend.vswitches", "at least one vSwitch"}},
	{key: "vswitches", value: `{"cn-hangzhou-h":[]}`, errHas: []string{"Backend.vswitches", "at least one vSwitch"}},
	{key: "vswitches", value: `["vsw-a"]`, errHas: []string{`Backend.vswitches: ["vsw-a"]: expected an object of zone -> vSwitch ids`}},
	{key: "vswitches", value: `{"cn-hangzhou-h":["vpc-a"]}`, errHas: []string{"Backend.vswitches", `vSwitch ids (vsw-...), not "vpc-a"`}},
	{key: "vswitches", value: `{"cn-hangzhou-h":["vsw-"]}`, errHas: []string{"Backend.vswitches", `not "vsw-"`}},
	{key: "vswitches", value: `{"cn-hangzhou-h":["vsw-a"],"cn-hangzhou-i":["vsw-a"]}`, errHas: []string{"Backend.vswitches", "one zone only"}},
	{key: "vswitches", value: `{"":["vsw-a"]}`, errHas: []string{"Backend.vswitches", "zone ids"}},

	{key: "vswitch_selection_policy", value: `"ordered"`, check: func(c Config) bool { return c.VSwitchPolicy == PolicyOrdered }},
	{key: "vswitch_selection_policy", value: `"random"`, check: func(c Config) bool { return c.VSwitchPolicy == PolicyRandom }},
	{key: "vswitch_selection_policy", value: `null`, check: func(c Config) bool { return c.VSwitchPolicy == PolicyRandom }},
	{key: "vswitch_selection_policy", value: `"most"`, errHas: []string{`Backend.vswitch_selection_policy: "most": expected "ordered" or "random"`}},

	{key: "security_group", value: `"sg-b"`, check: func(c Config) bool { return slices.Equal(c.SecurityGroups, []string{"sg-b", "sg-bp1a"}) }},
	{key: "security_group", value: `"sg-bp1a"`, check: func(c Config) bool { return slices.Equal(c.SecurityGroups, []string{"sg-bp1a"}) }},
	{key: "security_group", value: `"vsw-b"`, errHas: []string{`Backend.security_group: "vsw-b": expected a security group id (sg-...)`}},
	{key: "security_group", value: `["sg-b"]`, errHas: []string{"Backend.security_group", "expected a string"}},

	{key: "security_groups", value: `["sg-1","sg-2","sg-1"]`, check: func(c Config) bool { return slices.Equal(c.SecurityGroups, []string{"sg-1", "sg-2"}) }},
	{key: "security_groups", value: `[]`, errHas: []string{"Backend.security_group / security_groups", "at least one"}},
	{key: "security_groups", value: `["sg-1","sg-2","sg-3","sg-4","sg-5","sg-6","sg-7","sg-8","sg-9","sg-10","sg-11"]`,
		errHas: []string{"Backend.security_group / security_groups: 11 security groups: expected at most 10"}},
	{key: "security_groups", value: `["sg-1","SG-2"]`, errHas: []string{"Backend.security_groups", `not "SG-2"`}},
	{key: "security_groups", value: `"sg-1"`, errHas: []string{`Backend.security_groups: "sg-1": expected a list`}},

	{key: "eni_tags", value: `{"team":"net","k8s.io/x":""}`, check: func(c Config) bool {
		return reflect.DeepEqual(c.ENITags, map[string]string{"team": "net", "k8s.io/x": ""})
	}},
	{key: "eni_tags", value: `{}`, check: func(c Config) bool { return c.ENITags == nil }},
	{key: "eni_tags", value: `{"weft.io/cluster":"x"}`, errHas: []string{"Backend.eni_tags", "weft.io/", `not "weft.io/cluster"`}},
	{key: "eni_tags", value: `{"Weft.IO/node":"x"}`, errHas: []string{"Backend.eni_tags", `not "Weft.IO/node"`}},
	{key: "eni_tags", value: `{"acs:x":"y"}`, errHas: []string{"Backend.eni_tags", "acs:"}},
	{key: "eni_tags", value: `{"":"y"}`, errHas: []string{"Backend.eni_tags", "is empty"}},
	{key: "eni_tags", value: `{"a":"https://x"}`, errHas: []string{"Backend.eni_tags", `the value of "a" contains http`}},
	{key: "eni_tags", value: `{"a":1}`, errHas: []string{`Backend.eni_tags: {"a":1}: expected an object of tag key -> value`}},
	{key: "eni_tags", value: `{"1":"","2":"","3":"","4":"","5":"","6":"","7":"","8":"","9":"","10":"","11":"","12":"","13":"","14":"","15":"","16":"","17":""}`,
		errHas: []string{"Backend.eni_tags", "at most 16 tags"}},

	{key: "min_pool_size", value: `0`, check: func(c Config) bool { return c.MinPoolSize == 0 && c.WarmPoolTarget == 5 }},
	{key: "min_pool_size", value: `-1`, errHas: []string{"Backend.min_pool_size: -1: expected an integer >= 0"}},
	{key: "min_pool_size", value: `1.5`, errHas: []string{"Backend.min_pool_size: 1.5: expected an integer >= 0"}},
	{key: "min_pool_size", value: `"2"`, errHas: []string{`Backend.min_pool_size: "2": expected an integer >= 0`}},
	{key: "min_pool_size", value: `99999999999`, errHas: []string{"Backend.min_pool_size: 99999999999: expected an integer >= 0"}},

	{key: "warm_pool_target", value: `7`, check: func(c Config) bool { return c.WarmPoolTarget == 7 }},
	{key: "warm_pool_target", value: `0`, errHas: []string{"Backend.warm_pool_target: 0: expected an integer >= 1", "aws#1451"}},

	{key: "max_pool_size", value: `50`, check: func(c Config) bool { return c.MaxPoolSize == 50 && c.WarmPoolTarget == 5 }},
	{key: "max_pool_size", value: `3`, check: func(c Config) bool { return c.MinPoolSize == 2 && c.WarmPoolTarget == 3 && c.MaxPoolSize == 3 }},
	{key: "max_pool_size", value: `1`, check: func(c Config) bool { return c.MinPoolSize == 1 && c.WarmPoolTarget == 1 && c.MaxPoolSize == 1 }},
	{key: "max_pool_size", value: `0`, errHas: []string{"Backend.max_pool_size: 0: expected an integer >= 1"}},

	{key: "idle_ip_reclaim_after", value: `"1h30m"`, check: func(c Config) bool { return c.IdleIPReclaimAfter == 90*time.Minute }},
	{key: "idle_ip_reclaim_after", value: `"10"`, errHas: []string{`Backend.idle_ip_reclaim_after: "10": expected a duration such as "10m" of at least 1s`}},
	{key: "idle_ip_reclaim_after", value: `"100ms"`, errHas: []string{`Backend.idle_ip_reclaim_after: "100ms": expected a duration`}},
	{key: "idle_ip_reclaim_after", value: `600`, errHas: []string{"Backend.idle_ip_reclaim_after: 600: expected a duration"}},

	{key: "idle_ip_reclaim_batch_size", value: `1`, check: func(c Config) bool { return c.IdleIPReclaimBatchSize == 1 }},
	{key: "idle_ip_reclaim_batch_size", value: `0`, errHas: []string{"Backend.idle_ip_reclaim_batch_size: 0: expected an integer >= 1"}},

	{key: "idle_ip_reclaim_jitter_factor", value: `0`, check: func(c Config) bool { return c.IdleIPReclaimJitterFactor == 0 }},
	{key: "idle_ip_reclaim_jitter_factor", value: `1`, check: func(c Config) bool { return c.IdleIPReclaimJitterFactor == 1 }},
	{key: "idle_ip_reclaim_jitter_factor", value: `0.5e0`, check: func(c Config) bool { return c.IdleIPReclaimJitterFactor == 0.5 }},
	{key: "idle_ip_reclaim_jitter_factor", value: `1.01`, errHas: []string{"Backend.idle_ip_reclaim_jitter_factor: 1.01: expected a number from 0 to 1"}},
	{key: "idle_ip_reclaim_jitter_factor", value: `-0.1`, errHas: []string{"Backend.idle_ip_reclaim_jitter_factor: -0.1: expected a number from 0 to 1"}},
	{key: "idle_ip_reclaim_jitter_factor", value: `"0.1"`, errHas: []string{`Backend.idle_ip_reclaim_jitter_factor: "0.1": expected a number`}},

	{key: "ip_stack", value: `"ipv4"`, check: func(c Config) bool { return c.IPStack == "ipv4" }},
	{key: "ip_stack", value: `"dual"`, check: func(c Config) bool { return c.IPStack == "dual" }},
	{key: "ip_stack", value: `"ipv6"`, errHas: []string{`Backend.ip_stack: "ipv6": IPv6-only pods are not supported`, `expected "ipv4" or "dual"`}},
	{key: "ip_stack", value: `"Dual"`, errHas: []string{`Backend.ip_stack: "Dual": expected "ipv4" or "dual"`}},
	{key: "ip_stack", value: `6`, errHas: []string{`Backend.ip_stack`}},

	{key: "service_cidr", value: `"10.96.0.0/12"`, check: func(c Config) bool { return c.ServiceCIDR == netip.MustParsePrefix("10.96.0.0/12") }},
	{key: "service_cidr", value: `"10.96.0.1/12"`, errHas: []string{`Backend.service_cidr: "10.96.0.1/12": expected an IPv4 prefix`}},
	{key: "service_cidr", value: `"10.96.0.0"`, errHas: []string{`Backend.service_cidr: "10.96.0.0": expected an IPv4 prefix`}},
	{key: "service_cidr", value: `"fd00::/108"`, errHas: []string{`Backend.service_cidr: "fd00::/108": expected an IPv4 prefix`}},

	{key: "cluster_id", value: `"c-123"`, check: func(c Config) bool { return c.ClusterID == "c-123" }},
	{key: "cluster_id", value: `"acs:x"`, errHas: []string{`Backend.cluster_id: "acs:x": expected a tag value`}},

	{key: "region_id", value: `"cn-beijing"`, check: func(c Config) bool { return c.RegionID == "cn-beijing" }},
	{key: "region_id", value: `"CN beijing"`, errHas: []string{`Backend.region_id: "CN beijing": expected a region id`}},

	{key: "vpc_id", value: `"vpc-bp1x"`, check: func(c Config) bool { return c.VPCID == "vpc-bp1x" }},
	{key: "vpc_id", value: `"vsw-bp1x"`, errHas: []string{`Backend.vpc_id: "vsw-bp1x": expected a VPC id (vpc-...)`}},

	{key: "route_table_base", value: `255`, check: func(c Config) bool { return c.RouteTableBase == 255 }},
	{key: "route_table_base", value: `2147483647`, check: func(c Config) bool { return c.RouteTableBase == 2147483647 }},
	{key: "route_table_base", value: `254`, errHas: []string{"Backend.route_table_base: 254: expected an integer from 255 to 2147483647", "main 254"}},
	{key: "route_table_base", value: `2147483648`, errHas: []string{"Backend.route_table_base: 2147483648: expected an integer from 255"}},

	{key: "rule_priority_to_pod", value: `1`, check: func(c Config) bool { return c.RulePriorityToPod == 1 }},
	{key: "rule_priority_to_pod", value: `0`, errHas: []string{"Backend.rule_priority_to_pod: 0: expected an integer from 1 to 32765"}},
	{key: "rule_priority_to_pod", value: `2048`, errHas: []string{"Backend.rule_priority_to_pod: 2048: expected below rule_priority_from_pod (2048)"}},
	{key: "rule_priority_from_pod", value: `32765`, check: func(c Config) bool { return c.RulePriorityFromPod == 32765 }},
	{key: "rule_priority_from_pod", value: `32766`, errHas: []string{"Backend.rule_priority_from_pod: 32766: expected an integer from 1 to 32765"}},
	{key: "rule_priority_from_pod", value: `100`, errHas: []string{"Backend.rule_priority_to_pod: 512: expected below rule_priority_from_pod (100)"}},

	{key: "cooldown", value: `"30s"`, check: func(c Config) bool { return c.Cooldown == 30*time.Second }},
	{key: "cooldown", value: `"29s"`, errHas: []string{`Backend.cooldown: "29s": expected a duration such as "10m" of at least 30s`, "aws#2492"}},

	{key: "ip_reservation_ttl", value: `"20s"`, check: func(c Config) bool { return c.IPReservationTTL == 20*time.Second }},
	{key: "ip_reservation_ttl", value: `"0s"`, check: func(c Config) bool { return c.IPReservationTTL == 0 }},
	{key: "ip_reservation_ttl", value: `"0"`, check: func(c Config) bool { return c.IPReservationTTL == 0 }},
	{key: "ip_reservation_ttl", value: `"24h"`, check: func(c Config) bool { return c.IPReservationTTL == 24*time.Hour }},
	{key: "ip_reservation_ttl", value: `"-1s"`, errHas: []string{`Backend.ip_reservation_ttl: "-1s": expected a duration such as "5m", from "0s" (no fixed pod addresses) to "24h0m0s"`}},
	{key: "ip_reservation_ttl", value: `"24h1s"`, errHas: []string{`Backend.ip_reservation_ttl: "24h1s": expected a duration`}},
	{key: "ip_reservation_ttl", value: `"9999999999h"`, errHas: []string{"Backend.ip_reservation_ttl"}},
	{key: "ip_reservation_ttl", value: `300`, errHas: []string{"Backend.ip_reservation_ttl: 300: expected a duration"}},
	{key: "ip_reservation_ttl", value: `"5 minutes"`, errHas: []string{`Backend.ip_reservation_ttl: "5 minutes"`}},
	{key: "ip_reservation_ttl", value: `true`, errHas: []string{"Backend.ip_reservation_ttl"}},

	{key: "checkpoint", value: `"/data/cp.json"`, check: func(c Config) bool { return c.Checkpoint == "/data/cp.json" }},
	{key: "checkpoint", value: `"cp.json"`, errHas: []string{`Backend.checkpoint: "cp.json": expected an absolute, clean file path`}},
	{key: "checkpoint", value: `"/var/../cp.json"`, errHas: []string{"Backend.checkpoint", "clean"}},

	{key: "socket", value: `"/run/x.sock"`, check: func(c Config) bool { return c.Socket == "/run/x.sock" }},
	{key: "socket", value: `"/` + strings.Repeat("s", 107) + `"`, errHas: []string{"Backend.socket", "at most 107 bytes"}},
	{key: "socket", value: `"/"`, errHas: []string{`Backend.socket: "/": expected an absolute`}},

	{key: "eni_gc_grace", value: `"1m"`, check: func(c Config) bool { return c.ENIGCGrace == time.Minute }},
	{key: "eni_gc_grace", value: `"59s"`, errHas: []string{`Backend.eni_gc_grace: "59s": expected a duration such as "10m" of at least 1m0s`}},

	{key: "mtu", value: `0`, check: func(c Config) bool { return c.MTU == 0 }},
	{key: "mtu", value: `8500`, check: func(c Config) bool { return c.MTU == 8500 }},
	{key: "mtu", value: `9000`, errHas: []string{"Backend.mtu: 9000: expected 0 (the ENI's) or an integer from 576 to 8500"}},
	{key: "mtu", value: `100`, errHas: []string{"Backend.mtu: 100: expected 0"}},

	{key: "AccessKeyID", value: `"LTAI1"`, errHas: []string{"Backend.AccessKeyID and Backend.AccessKeySecret: give both or neither"}},
	{key: "AccessKeyID", value: `1`, errHas: []string{"Backend.AccessKeyID: 1: expected a string"}},
	{key: "AccessKeySecret", value: `"hush-hush"`, errHas: []string{"Backend.AccessKeyID and Backend.AccessKeySecret: give both or neither"}},
	{key: "AccessKeySecret", value: `["hush-hush"]`, errHas: []string{"Backend.AccessKeySecret: expected a string"}},
}

func TestParseConfigKeys(t *testing.T) {
	for _, kc := range configKeyCases {
		t.Run(kc.key+"="+kc.value[:min(len(kc.value), 30)], func(t *testing.T) {
			c, err := ParseConfig(configWith(t, fmt.Sprintf(`{%q:%s}`, kc.key, kc.value)))
			if kc.check != nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if !kc.check(c) {
					t.Fatalf("accepted as %v", c)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted as %v, want an error containing %q", c, kc.errHas)
			}
			for _, s := range kc.errHas {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if strings.Contains(err.Error(), "hush-hush") {
				t.Errorf("the error shows the secret: %v", err)
			}
			if !reflect.DeepEqual(c, Config{}) {
				t.Errorf("a refused config comes back as %v, want the zero Config", c)
			}
		})
	}
}

// Every key the parser knows has a value that is accepted and one that is refused in configKeyCases.
func TestKeyCasesCoverEveryKey(t *testing.T) {
	ok, bad := map[string]bool{}, map[string]bool{}
	for _, kc := range configKeyCases {
		if kc.check != nil {
			ok[kc.key] = true
		} else {
			bad[kc.key] = true
		}
	}
	for _, k := range KnownKeys() {
		if !bad[k] {
			t.Errorf("no refused value of %s in configKeyCases", k)
		}
		if !ok[k] && k != "AccessKeyID" && k != "AccessKeySecret" { // those two only in pairs: TestParseConfigFull
			t.Errorf("no accepted value of %s in configKeyCases", k)
		}
	}
}

func TestParseConfigUnknownKey(t *testing.T) {
	_, err := ParseConfig(configWith(t, `{"max_pool_szie":5,"min_pool_sise":1}`))
	if err == nil {
		t.Fatal("accepted a typo")
	}
	for _, s := range []string{"Backend.max_pool_szie: unknown key", "Backend.min_pool_sise: unknown key", "max_pool_size", "vswitch_selection_policy", "AccessKeySecret"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
}

// Terway's keys that weft does not take are refused with the reason, never with the value (access_secret).
func TestParseConfigTerwayOnlyKeys(t *testing.T) {
	for k := range terwayOnly {
		_, err := ParseConfig(configWith(t, fmt.Sprintf(`{%q:"hush-hush"}`, k)))
		if err == nil || !strings.Contains(err.Error(), "Backend."+k+": a Terway key weft's eni backend does not take: ") {
			t.Errorf("%s: %v", k, err)
		}
		if err != nil && strings.Contains(err.Error(), "hush-hush") {
			t.Errorf("%s: the error shows the value: %v", k, err)
		}
	}
}

// Keys match regardless of case, as encoding/json matches ali-vpc's; one key spelled twice is refused.
func TestParseConfigKeyCase(t *testing.T) {
	c, err := ParseConfig(configWith(t, `{"MAX_POOL_SIZE":20,"accesskeyid":"LTAI","ACCESSKEYSECRET":"hush-hush"}`))
	if err != nil || c.MaxPoolSize != 20 || c.AccessKeyID != "LTAI" || c.AccessKeySecret != "hush-hush" {
		t.Fatalf("%v %v", c, err)
	}
	for _, raw := range []string{
		`{"Type":"eni","type":"eni","vswitches":{"z-a":["vsw-a"]},"security_group":"sg-a"}`,
		`{"Type":"eni","vswitches":{"z-a":["vsw-a"]},"security_group":"sg-a","min_pool_size":1,"Min_Pool_Size":2}`,
		`{"Type":"eni","vswitches":{"z-a":["vsw-a"]},"security_group":"sg-a","mtu":1500,"mtu":1400}`,
	} {
		_, err := ParseConfig(json.RawMessage(raw))
		if err == nil || !strings.Contains(err.Error(), "given twice") {
			t.Errorf("%s: %v, want given twice", raw, err)
		}
	}
}

func TestParseConfigNotAnObject(t *testing.T) {
	for _, raw := range []string{`[]`, `"eni"`, `{"Type":"eni"`, `{"Type":"eni"} {}`, `null x`, `{"a" 1}`} {
		_, err := ParseConfig(json.RawMessage(raw))
		if err == nil || !strings.Contains(err.Error(), "Backend (eni): expected a JSON object") {
			t.Errorf("%s: %v", raw, err)
		}
	}
	for _, raw := range []string{``, `null`, `{}`} {
		_, err := ParseConfig(json.RawMessage(raw))
		if err == nil || !strings.Contains(err.Error(), "Backend.vswitches: expected at least one vSwitch") ||
			!strings.Contains(err.Error(), "at least one security group") {
			t.Errorf("%q: %v, want both missing lists named", raw, err)
		}
	}
}

// Every problem is reported at once, not one per restart.
func TestParseConfigReportsAllProblems(t *testing.T) {
	_, err := ParseConfig(configWith(t, `{"min_pool_size":-1,"cooldown":"1s","bogus":1}`))
	for _, s := range []string{"Backend.min_pool_size", "Backend.cooldown", "Backend.bogus"} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("error %v does not name %s", err, s)
		}
	}
}

func TestParseConfigPoolCrossChecks(t *testing.T) {
	for extra, want := range map[string]string{
		`{"min_pool_size":5,"max_pool_size":3}`:                         "Backend.min_pool_size: 5: expected at most max_pool_size (3)",
		`{"min_pool_size":3,"warm_pool_target":2}`:                      "Backend.warm_pool_target: 2: expected a value from min_pool_size (3) to max_pool_size (10)",
		`{"warm_pool_target":8,"max_pool_size":6}`:                      "Backend.warm_pool_target: 8: expected a value from min_pool_size (2) to max_pool_size (6)",
		`{"min_pool_size":1,"warm_pool_target":1,"max_pool_size":1}`:    "",
		`{"min_pool_size":20}`:                                          "", // max and target follow: 20, 20
		`{"warm_pool_target":1}`:                                        "", // min follows: 1
		`{"min_pool_size":20,"max_pool_size":null}`:                     "", // null: as if not given
		`{"min_pool_size":4,"warm_pool_target":4,"max_pool_size":4000}`: "",
	} {
		c, err := ParseConfig(configWith(t, extra))
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", extra, err)
		case want == "" && !(c.MinPoolSize <= c.WarmPoolTarget && c.WarmPoolTarget <= c.MaxPoolSize && c.WarmPoolTarget >= 1):
			t.Errorf("%s: %d/%d/%d", extra, c.MinPoolSize, c.WarmPoolTarget, c.MaxPoolSize)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: %v, want %q", extra, err, want)
		}
	}
	c, _ := ParseConfig(configWith(t, `{"min_pool_size":20}`))
	if c.MinPoolSize != 20 || c.WarmPoolTarget != 20 || c.MaxPoolSize != 20 {
		t.Errorf("min 20 alone: %d/%d/%d, want 20/20/20", c.MinPoolSize, c.WarmPoolTarget, c.MaxPoolSize)
	}
}

// The secret is never printed: not by any fmt verb, not by slog, not in an error.
func TestConfigNeverPrintsTheSecret(t *testing.T) {
	c, err := ParseConfig(readConfigTestdata(t, "full.json"))
	if err != nil {
		t.Fatal(err)
	}
	const secret = "s3cr3t-value"
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "eni", c, "ptr", &c)
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "eni", c)
	type outer struct{ C Config }
	for _, s := range []string{c.String(), c.GoString(), fmt.Sprint(c), fmt.Sprintf("%v|%+v|%#v|%s|%q|%d|%x", c, c, c, c, c, c, c),
		fmt.Sprintf("%v %+v %#v", &c, outer{c}, outer{c}), logged.String()} {
		if strings.Contains(s, secret) {
			t.Errorf("printed the secret: %s", s)
		}
		if !strings.Contains(s, "LTAIexample") {
			t.Errorf("printed without the key id, so probably without the config: %s", s)
		}
	}
	if !strings.Contains(c.String(), `"AccessKeySecret":"<redacted>"`) {
		t.Errorf("String %s does not show that a secret is set", c.String())
	}
	c.AccessKeySecret = ""
	if strings.Contains(c.String(), "AccessKeySecret") {
		t.Errorf("String %s shows a secret that is not set", c.String())
	}
}

// MarshalJSON is the configuration itself, read back to the same Config.
func TestConfigMarshalRoundTrip(t *testing.T) {
	for _, name := range []string{"full.json", "minimal.json", "terway.json"} {
		c, err := ParseConfig(readConfigTestdata(t, name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseConfig(b)
		if err != nil || !reflect.DeepEqual(again, c) {
			t.Errorf("%s: %s read back as %v, %v", name, b, again, err)
		}
	}
}

func TestVSwitchesFor(t *testing.T) {
	c, err := ParseConfig(configWith(t, `{"vswitches":{"z-a":["vsw-1","vsw-2","vsw-3","vsw-4","vsw-5","vsw-6"],"z-b":["vsw-9"]},"vswitch_selection_policy":"ordered"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"vsw-1", "vsw-2", "vsw-3", "vsw-4", "vsw-5", "vsw-6"}
	if got := c.VSwitchesFor("z-a"); !slices.Equal(got, want) {
		t.Fatalf("ordered: %v, want %v", got, want)
	}
	if got := c.VSwitchesFor("z-c"); len(got) != 0 {
		t.Fatalf("a zone not configured: %v, want none (no other zone's vSwitch: an ENI stays in its zone)", got)
	}
	got := c.VSwitchesFor("z-a")
	got[0] = "vsw-x"
	if c.VSwitches["z-a"][0] != "vsw-1" {
		t.Fatal("VSwitchesFor returned the Config's own slice")
	}
	c.VSwitchPolicy = PolicyRandom
	orders := map[string]bool{}
	for range 200 {
		got := c.VSwitchesFor("z-a")
		if s := slices.Sorted(slices.Values(got)); !slices.Equal(s, want) {
			t.Fatalf("random: %v is not a permutation of %v", got, want)
		}
		orders[strings.Join(got, ",")] = true
	}
	if len(orders) < 2 { // 720 orders: 200 draws all alike has probability 720^-199
		t.Fatalf("random gave one order only: %v", orders)
	}
	if c.VSwitches["z-a"][0] != "vsw-1" {
		t.Fatal("shuffling changed the Config")
	}
}

func FuzzParseConfig(f *testing.F) {
	for _, name := range []string{"full.json", "minimal.json", "terway.json"} {
		f.Add(string(readConfigTestdata(f, name)))
	}
	for _, kc := range configKeyCases {
		f.Add(string(configWith(f, fmt.Sprintf(`{%q:%s}`, kc.key, kc.value))))
	}
	f.Add(`{"TYPE":"eni","VSwitches":{"cn-a":["vsw-1"]},"Security_Groups":["sg-1"],"security_group":"sg-1","eni_tags":{}}`)
	f.Add(`{"vswitches":{"cn-a":["vsw-1"]},"security_groups":["sg-1"],"min_pool_size":0,"max_pool_size":1,"idle_ip_reclaim_jitter_factor":-0}`)
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := ParseConfig(json.RawMessage(raw))
		if err != nil {
			if !reflect.DeepEqual(c, Config{}) {
				t.Fatalf("refused (%v) but returned %v", err, c)
			}
			return
		}
		_ = c.String()
		_ = c.VSwitchesFor("cn-a")
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("marshal %v: %v", c, err)
		}
		again, err := ParseConfig(b)
		if err != nil {
			t.Fatalf("%s accepted as %v, but its marshalled form %s is refused: %v", raw, c, b, err)
		}
		if !reflect.DeepEqual(again, c) {
			t.Fatalf("%s: %v re-parses as %v", raw, c, again)
		}
		if c.MinPoolSize > c.WarmPoolTarget || c.WarmPoolTarget > c.MaxPoolSize || c.WarmPoolTarget < 1 ||
			c.RulePriorityToPod >= c.RulePriorityFromPod || c.RouteTableBase < MinRouteTableBase ||
			len(c.SecurityGroups) == 0 || len(c.SecurityGroups) > MaxSecurityGroups || len(c.VSwitches) == 0 ||
			c.Cooldown < MinCooldown {
			t.Fatalf("%s accepted with broken invariants: %v", raw, c)
		}
	})
}
