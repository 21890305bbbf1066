package eni

// The eni backend's configuration: net-conf.json's Backend object, spelled with the keys of Terway's eni-config
// (ConfigMap kube-system/eni-config, key eni_conf) so that a Terway user's settings carry over, plus weft's own
// keys where weft needs more (warm_pool_target, cooldown, route_table_base, the rule priorities, checkpoint,
// socket, eni_gc_grace, mtu) and upstream flannel's AccessKeyID / AccessKeySecret, as the ali-vpc backend takes
// them.
//
// Keys match case-insensitively (as encoding/json matches ali-vpc's keys); two spellings of one key in the same
// object are refused, and so is any key this file does not know: a typo in a Terway key ("max_pool_szie") must
// never be silently ignored and leave a default in force. Every error names the key, the value given and what was
// expected; the access key secret is never printed, neither in an error nor by Config's String, GoString, Format
// or LogValue.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// configType is the Backend.Type this configuration is for (the backend registers itself under the same name).
const configType = "eni"

// ReservedTagPrefix starts the keys of the tags weft itself puts on every ENI it creates (weft.io/cluster,
// weft.io/node, weft.io/instance, weft.io/created-by); eni_tags may not use it, or a user's tag could make weft
// adopt or collect an ENI that is not its own.
const ReservedTagPrefix = "weft.io/"

// The vSwitch selection policies of vswitch_selection_policy.
const (
	// PolicyRandom, Terway's default (its Populate sets "random" when the key is empty), spreads the nodes of a
	// zone over its vSwitches.
	PolicyRandom = "random"
	// PolicyOrdered uses the zone's vSwitches in the order given. (Terway's eni-config "ordered" maps to its
	// "most" policy, most free addresses first; VSwitchesFor cannot see free addresses, so weft's agent ranks
	// them itself where it knows them, keeping the given order among equals.)
	PolicyOrdered = "ordered"
)

// IPStackIPv4 and IPStackDual are the ip_stack values weft's eni backend supports (Terway's key): IPv4 only, or
// an IPv4 and an IPv6 address of the same ENI for every pod (dual.go).
const (
	IPStackIPv4 = "ipv4"
	IPStackDual = "dual"
)

// Limits checked by ParseConfig.
const (
	// MaxSecurityGroups is the most security groups one ENI takes (CreateNetworkInterface's SecurityGroupIds.N).
	MaxSecurityGroups = 10
	// MaxENITags: a resource carries at most 20 tags, and weft puts 4 of its own on every ENI.
	MaxENITags = 20 - 4
	// MinCooldown is the shortest cooldown of a released address: reusing one sooner broke the old pod's
	// connections on another node (aws#2492, #3634).
	MinCooldown = 30 * time.Second
	// MinENIGCGrace: an ENI is Available between its creation and its attachment (seconds, a minute under
	// throttling); a shorter grace could collect an ENI a node is about to attach.
	MinENIGCGrace = time.Minute
	// MinRouteTableBase keeps base + ifindex (ifindex >= 1) above 255, clear of the kernel's tables 253
	// (default), 254 (main) and 255 (local) and of 0 (unspecified).
	MinRouteTableBase = 255
	// MaxRouteTableBase keeps base + any ifindex (< 2^31) below 2^32 - 1, the largest 32-bit table id.
	MaxRouteTableBase = math.MaxInt32
	// MinMTU and MaxMTU bound mtu when given: 576 is the least every IPv4 host must take; Alibaba Cloud's jumbo
	// frames are at most 8500 bytes.
	MinMTU = 576
	MaxMTU = 8500
	// maxUnixSocketPath is the longest unix socket path (sun_path is 108 bytes with its terminating NUL).
	maxUnixSocketPath = 107
)

// Config is the eni part of net-conf.json's Backend object, as ParseConfig returns it: defaults filled in,
// every key checked, security_group and security_groups merged.
type Config struct {
	// VSwitches are the vSwitch ids pods' ENIs are created in, by zone (vswitches). A zone not listed has none:
	// an ENI must be in its instance's zone (Terway then uses the instance's own vSwitch from metadata).
	VSwitches map[string][]string
	// VSwitchPolicy is PolicyRandom or PolicyOrdered (vswitch_selection_policy).
	VSwitchPolicy string
	// SecurityGroups of every ENI weft creates: security_group first, then security_groups, duplicates removed.
	SecurityGroups []string
	// PodSecurityGroups are the groups a pod may ask for by annotation beside SecurityGroups (pod_security_groups;
	// podnet.go).
	PodSecurityGroups []string
	// ENITags are put on every ENI weft creates, beside weft's own tags (eni_tags); nil when none.
	ENITags map[string]string

	// MinPoolSize, WarmPoolTarget and MaxPoolSize are the floor, target and ceiling of idle addresses
	// (min_pool_size, warm_pool_target, max_pool_size): the pool tops up to the target when idle falls below the
	// floor and releases down to it when idle exceeds the ceiling.
	MinPoolSize, WarmPoolTarget, MaxPoolSize int
	// IdleIPReclaimAfter is how long an address stays idle above the ceiling before it is released
	// (idle_ip_reclaim_after).
	IdleIPReclaimAfter time.Duration
	// IdleIPReclaimBatchSize is the most addresses one release takes (idle_ip_reclaim_batch_size).
	IdleIPReclaimBatchSize int
	// IdleIPReclaimJitterFactor (0..1) stretches IdleIPReclaimAfter by a random share of itself, so that nodes do
	// not release in step (idle_ip_reclaim_jitter_factor).
	IdleIPReclaimJitterFactor float64
	// Cooldown is how long a released address is not handed out again (cooldown).
	Cooldown time.Duration
	// IPReservationTTL is how long a StatefulSet's pod, or one annotated k8s.aliyun.com/pod-ip-reservation:
	// "true", keeps its address after its deletion for its re-creation (ip_reservation_ttl; reserve.go); 0: never.
	IPReservationTTL time.Duration

	IPStack     string       // ip_stack: IPStackIPv4 or IPStackDual
	ServiceCIDR netip.Prefix // service_cidr; invalid (the zero Prefix) when not given
	ClusterID   string       // cluster_id: the value of the weft.io/cluster tag; "" lets the backend choose
	RegionID    string       // region_id; "": the metadata's region-id
	VPCID       string       // vpc_id; "": the metadata's vpc-id

	// RouteTableBase numbers each ENI's route table base + the ENI's ifindex (route_table_base).
	RouteTableBase int
	// RulePriorityToPod ("to <pod> lookup main") and RulePriorityFromPod ("from <pod> lookup <ENI table>") are
	// the two ip rule priorities weft owns (rule_priority_to_pod, rule_priority_from_pod).
	RulePriorityToPod, RulePriorityFromPod int

	Checkpoint string        // checkpoint: the path of the allocation checkpoint
	Socket     string        // socket: the unix socket the weft-eni plugin talks to
	ENIGCGrace time.Duration // eni_gc_grace: how long a weft ENI is detached before it is deleted
	MTU        int           // mtu of the pods' interfaces; 0: the ENI's

	// Exclusive ENI mode (exclusive.go): Mode (ModeShared or ModeExclusive; a node's LabelENIMode overrides
	// it), the idle ENIs kept ready in exclusive mode (exclusive_warm_enis), the prefixes an exclusive pod reaches
	// through its second veth beside the node and the Service CIDR (host_stack_cidrs, Terway's name).
	Mode              string
	ExclusiveWarmENIs int
	HostStackCIDRs    []netip.Prefix
	// EnableENITrunking is Terway's enable_eni_trunking (trunk.go); TrunkLink (trunk_link) how a member ENI's
	// link is made on the trunk: datapath.MemberVLAN (the default) or datapath.MemberMACVLAN (alisim).
	EnableENITrunking bool
	TrunkLink         string

	// AccessKeyID and AccessKeySecret are static credentials, as upstream flannel's ali-vpc backend took them
	// (both or neither; the instance's RAM role is preferred). The secret is never printed.
	AccessKeyID     string
	AccessKeySecret string
}

// Defaults returns the configuration of every key not given, each default with its reason:
//
//   - vswitch_selection_policy "random": Terway's default.
//   - min_pool_size 2, warm_pool_target 5, max_pool_size 10: weft's. Never a zero warm target: with none, every
//     pod waits for a cloud call and node starts storm the API (aws#1451, #1700, #2896). (Terway's chart has
//     min 0 and max 5, and no target between them.) When min_pool_size or max_pool_size is given and the default
//     does not fit it, the defaults of the others are brought within what was given: max_pool_size 3 alone means
//     min 2, target 3, max 3; an explicit value is never changed.
//   - idle_ip_reclaim_after 10m, idle_ip_reclaim_batch_size 5, idle_ip_reclaim_jitter_factor 0.1: Terway's.
//   - cooldown 30s: the least that kept a reused address from breaking the old pod's connections (aws#2492).
//   - ip_reservation_ttl 5m: Terway's time a StatefulSet pod's (or an annotated pod's) address is kept after its
//     deletion, long enough for a rolling restart or a node's reboot to bring the pod back.
//   - ip_stack "ipv4": Terway's default; "dual" adds an IPv6 address of the pod's ENI (dual.go).
//   - route_table_base 1000, rule_priority_to_pod 512, rule_priority_from_pod 2048: Terway's, so rules and tables
//     look as Terway users know them.
//   - eni_gc_grace 10m: Terway's guard before a detached ENI is deleted.
//   - checkpoint /var/lib/weft/eni/checkpoint.json: weft's state directory, kept across reboots.
//   - socket /run/weft/eni.sock: the weft-eni plugin's default (cniproto.DefaultSocket).
//   - mtu 0: the ENI's own.
//
// vswitches and security groups have no default: at least one of each must be given.
func Defaults() Config {
	return Config{
		VSwitchPolicy:             PolicyRandom,
		MinPoolSize:               2,
		WarmPoolTarget:            5,
		MaxPoolSize:               10,
		IdleIPReclaimAfter:        10 * time.Minute,
		IdleIPReclaimBatchSize:    5,
		IdleIPReclaimJitterFactor: 0.1,
		Cooldown:                  MinCooldown,
		IPReservationTTL:          5 * time.Minute,
		IPStack:                   IPStackIPv4,
		RouteTableBase:            1000,
		RulePriorityToPod:         512,
		RulePriorityFromPod:       2048,
		Checkpoint:                "/var/lib/weft/eni/checkpoint.json",
		Socket:                    "/run/weft/eni.sock",
		ENIGCGrace:                10 * time.Minute,
		Mode:                      ModeShared,
		ExclusiveWarmENIs:         1,
		TrunkLink:                 TrunkLinkVLAN,
	}
}

// cfgField is one known key: how its value is read into a Config.
type cfgField struct {
	key   string
	parse func(c *Config, raw json.RawMessage) error
}

// configFields are the known keys, in the order the error for an unknown key lists them.
var configFields = []cfgField{
	{"Type", func(_ *Config, raw json.RawMessage) error {
		s, err := cfgString("Type", raw)
		if err == nil && s != configType {
			err = cfgKeyErr("Type", raw, fmt.Sprintf("%q", configType))
		}
		return err
	}},
	{"vswitches", parseVSwitchesKey},
	{"vswitch_selection_policy", func(c *Config, raw json.RawMessage) error {
		s, err := cfgString("vswitch_selection_policy", raw)
		if err == nil && s != PolicyOrdered && s != PolicyRandom {
			err = cfgKeyErr("vswitch_selection_policy", raw, `"ordered" or "random"`)
		}
		c.VSwitchPolicy = s
		return err
	}},
	{"security_group", func(c *Config, raw json.RawMessage) error {
		s, err := cfgString("security_group", raw)
		if err != nil {
			return err
		}
		if !validCloudID(s, "sg-") {
			return cfgKeyErr("security_group", raw, "a security group id (sg-...)")
		}
		c.SecurityGroups = append([]string{s}, c.SecurityGroups...) // first, whatever the key order
		return nil
	}},
	{"security_groups", func(c *Config, raw json.RawMessage) error {
		var ids []string
		if err := json.Unmarshal(raw, &ids); err != nil {
			return cfgKeyErr("security_groups", raw, "a list of security group ids")
		}
		for _, id := range ids {
			if !validCloudID(id, "sg-") {
				return cfgKeyErr("security_groups", raw, fmt.Sprintf("security group ids (sg-...), not %q", id))
			}
		}
		c.SecurityGroups = append(c.SecurityGroups, ids...)
		return nil
	}},
	{"pod_security_groups", parsePodSecurityGroupsKey}, // podnet.go
	{"eni_tags", parseENITagsKey},
	{"min_pool_size", cfgInt("min_pool_size", 0, -1, func(c *Config) *int { return &c.MinPoolSize })},
	{"warm_pool_target", cfgInt("warm_pool_target", 1, -1, func(c *Config) *int { return &c.WarmPoolTarget },
		"a zero warm target makes every pod wait for a cloud call, aws#1451")},
	{"max_pool_size", cfgInt("max_pool_size", 1, -1, func(c *Config) *int { return &c.MaxPoolSize })},
	{"idle_ip_reclaim_after", cfgDuration("idle_ip_reclaim_after", time.Second, func(c *Config) *time.Duration { return &c.IdleIPReclaimAfter })},
	{"idle_ip_reclaim_batch_size", cfgInt("idle_ip_reclaim_batch_size", 1, -1, func(c *Config) *int { return &c.IdleIPReclaimBatchSize })},
	{"idle_ip_reclaim_jitter_factor", func(c *Config, raw json.RawMessage) error {
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || !isJSONNumber(raw) || f < 0 || f > 1 {
			return cfgKeyErr("idle_ip_reclaim_jitter_factor", raw, "a number from 0 to 1")
		}
		c.IdleIPReclaimJitterFactor = f + 0 // + 0: -0 is 0
		return nil
	}},
	{"ip_stack", func(c *Config, raw json.RawMessage) error {
		s, err := cfgString("ip_stack", raw)
		switch {
		case err != nil:
			return err
		case s == "ipv6":
			return fmt.Errorf(`Backend.ip_stack: "ipv6": IPv6-only pods are not supported by weft's eni backend; expected %q or %q`, IPStackIPv4, IPStackDual)
		case s != IPStackIPv4 && s != IPStackDual:
			return cfgKeyErr("ip_stack", raw, fmt.Sprintf("%q or %q", IPStackIPv4, IPStackDual))
		}
		c.IPStack = s
		return nil
	}},
	{"service_cidr", func(c *Config, raw json.RawMessage) error {
		s, err := cfgString("service_cidr", raw)
		if err != nil {
			return err
		}
		p, perr := netip.ParsePrefix(s)
		if perr != nil || !p.Addr().Is4() || p.Masked() != p {
			return cfgKeyErr("service_cidr", raw, "an IPv4 prefix such as \"10.96.0.0/12\" (its network address, no host bits)")
		}
		c.ServiceCIDR = p
		return nil
	}},
	{"cluster_id", func(c *Config, raw json.RawMessage) error {
		s, err := cfgString("cluster_id", raw)
		if err == nil {
			if why := tagValueProblem(s); why != "" {
				err = cfgKeyErr("cluster_id", raw, "a tag value: "+why)
			}
		}
		c.ClusterID = s
		return err
	}},
	{"region_id", func(c *Config, raw json.RawMessage) error {
		s, err := cfgString("region_id", raw)
		if err == nil && !validRegionID(s) {
			err = cfgKeyErr("region_id", raw, `a region id such as "cn-hangzhou"`)
		}
		c.RegionID = s
		return err
	}},
	{"vpc_id", func(c *Config, raw json.RawMessage) error {
		s, err := cfgString("vpc_id", raw)
		if err == nil && !validCloudID(s, "vpc-") {
			err = cfgKeyErr("vpc_id", raw, "a VPC id (vpc-...)")
		}
		c.VPCID = s
		return err
	}},
	{"route_table_base", cfgInt("route_table_base", MinRouteTableBase, MaxRouteTableBase, func(c *Config) *int { return &c.RouteTableBase },
		"base + ifindex must stay above 255, clear of the tables default 253, main 254 and local 255, and within 32 bits")},
	{"rule_priority_to_pod", cfgInt("rule_priority_to_pod", 1, 32765, func(c *Config) *int { return &c.RulePriorityToPod },
		"0 is the local table's rule, 32766 and 32767 main's and default's")},
	{"rule_priority_from_pod", cfgInt("rule_priority_from_pod", 1, 32765, func(c *Config) *int { return &c.RulePriorityFromPod },
		"0 is the local table's rule, 32766 and 32767 main's and default's")},
	{"cooldown", cfgDuration("cooldown", MinCooldown, func(c *Config) *time.Duration { return &c.Cooldown },
		"an address reused sooner broke the old pod's connections, aws#2492")},
	{"ip_reservation_ttl", parseReservationTTL},
	{"checkpoint", cfgPath("checkpoint", 4096, func(c *Config) *string { return &c.Checkpoint })},
	{"socket", cfgPath("socket", maxUnixSocketPath, func(c *Config) *string { return &c.Socket })},
	{"eni_gc_grace", cfgDuration("eni_gc_grace", MinENIGCGrace, func(c *Config) *time.Duration { return &c.ENIGCGrace },
		"an ENI is Available between its creation and its attachment")},
	{"mtu", func(c *Config, raw json.RawMessage) error {
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil || n != 0 && (n < MinMTU || n > MaxMTU) {
			return cfgKeyErr("mtu", raw, fmt.Sprintf("0 (the ENI's) or an integer from %d to %d", MinMTU, MaxMTU))
		}
		c.MTU = int(n)
		return nil
	}},
	{"Mode", parseModeKey}, // exclusive.go
	{"exclusive_warm_enis", cfgInt("exclusive_warm_enis", 1, -1, func(c *Config) *int { return &c.ExclusiveWarmENIs },
		"a pod start never waits for an ENI's creation and attachment")},
	{"host_stack_cidrs", parseHostStackCIDRsKey},
	{"enable_eni_trunking", parseTrunkingKey}, // trunk.go
	{"trunk_link", parseTrunkLinkKey},         // trunk.go
	{"AccessKeyID", func(c *Config, raw json.RawMessage) error {
		s, err := cfgString("AccessKeyID", raw)
		c.AccessKeyID = s
		return err
	}},
	{"AccessKeySecret", func(c *Config, raw json.RawMessage) error {
		// Never echo the value: it may be the secret with a typo.
		if err := json.Unmarshal(raw, &c.AccessKeySecret); err != nil || raw[0] != '"' {
			c.AccessKeySecret = ""
			return errors.New("Backend.AccessKeySecret: expected a string")
		}
		return nil
	}},
}

// cfgFieldByKey finds a cfgField by its key's lower-case spelling.
var cfgFieldByKey = func() map[string]*cfgField {
	m := make(map[string]*cfgField, len(configFields))
	for i := range configFields {
		m[strings.ToLower(configFields[i].key)] = &configFields[i]
	}
	return m
}()

// terwayOnly are keys of Terway's eni_conf that weft's eni backend does not take. They are refused like any
// unknown key, but say why and what to use instead.
var terwayOnly = map[string]string{
	"eni_tag_filter":           "weft manages only the ENIs it created and tagged itself (weft.io/cluster, weft.io/created-by)",
	"ip_warm_up_size":          "the pool fills up to warm_pool_target from the start",
	"idle_ip_reclaim_interval": "weft schedules each release itself, a jittered idle_ip_reclaim_after after the address fell idle",
	"ip_pool_sync_period":      "weft reconciles on every change and resyncs on its own",
	"enable_erdma":             "ERDMA ENIs are not supported by weft's eni backend",
	"credential_path":          "give AccessKeyID and AccessKeySecret, or better, the instance's RAM role",
	"access_key":               "the key id is spelled AccessKeyID here (or, better, use the instance's RAM role)",
	"access_secret":            "the secret is spelled AccessKeySecret here (or, better, use the instance's RAM role)",
}

// KnownKeys are the keys ParseConfig accepts, in their canonical spelling.
func KnownKeys() []string {
	keys := make([]string, len(configFields))
	for i, f := range configFields {
		keys[i] = f.key
	}
	return keys
}

// ParseConfig reads net-conf.json's Backend object (its Type, when present, must be "eni"), checks every key
// and the keys against each other, and fills in Defaults for the keys not given. An empty raw is an empty object.
func ParseConfig(raw json.RawMessage) (Config, error) {
	c := Defaults()
	c.VSwitchPolicy = ""
	members, err := jsonObjectMembers(raw)
	if err != nil {
		return Config{}, err
	}
	seen, given := map[string]bool{}, map[string]bool{} // given: with a value other than null
	var errs []error
	for _, m := range members {
		f, ok := cfgFieldByKey[strings.ToLower(m.key)]
		if why, terway := terwayOnly[strings.ToLower(m.key)]; !ok && terway {
			errs = append(errs, fmt.Errorf("Backend.%s: a Terway key weft's eni backend does not take: %s", m.key, why))
			continue
		}
		if !ok {
			errs = append(errs, fmt.Errorf("Backend.%s: unknown key (a typo?); the eni backend knows %s", m.key, strings.Join(KnownKeys(), ", ")))
			continue
		}
		if seen[f.key] {
			errs = append(errs, fmt.Errorf("Backend.%s: given twice (keys match regardless of case)", f.key))
			continue
		}
		seen[f.key] = true
		if bytes.Equal(m.value, []byte("null")) {
			continue // null: as if not given
		}
		given[f.key] = true
		if err := f.parse(&c, m.value); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	if c.VSwitchPolicy == "" {
		c.VSwitchPolicy = PolicyRandom
	}
	c.SecurityGroups = dedupeStrings(c.SecurityGroups)
	fitPoolDefaults(&c, given)
	if err := c.check(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// fitPoolDefaults brings the defaults of the pool sizes not given within those given (see Defaults).
func fitPoolDefaults(c *Config, given map[string]bool) {
	minGiven, targetGiven, maxGiven := given["min_pool_size"], given["warm_pool_target"], given["max_pool_size"]
	if !maxGiven {
		c.MaxPoolSize = max(c.MaxPoolSize, c.MinPoolSize, c.WarmPoolTarget)
	}
	if !minGiven {
		c.MinPoolSize = min(c.MinPoolSize, c.MaxPoolSize, c.WarmPoolTarget)
	}
	if !targetGiven {
		c.WarmPoolTarget = max(min(c.WarmPoolTarget, c.MaxPoolSize), c.MinPoolSize, 1)
	}
}

// check is the cross-key validation of a parsed Config.
func (c Config) check() error {
	var errs []error
	n := 0
	for _, ids := range c.VSwitches {
		n += len(ids)
	}
	if n == 0 {
		errs = append(errs, errors.New(`Backend.vswitches: expected at least one vSwitch id, by zone: {"<zone>": ["vsw-..."]}`))
	}
	switch len(c.SecurityGroups) {
	case 0:
		errs = append(errs, errors.New(`Backend.security_group / security_groups: expected at least one security group id (sg-...)`))
	default:
		if len(c.SecurityGroups) > MaxSecurityGroups {
			errs = append(errs, fmt.Errorf("Backend.security_group / security_groups: %d security groups: expected at most %d altogether (an ENI takes no more)",
				len(c.SecurityGroups), MaxSecurityGroups))
		}
	}
	if c.MinPoolSize > c.MaxPoolSize {
		errs = append(errs, fmt.Errorf("Backend.min_pool_size: %d: expected at most max_pool_size (%d)", c.MinPoolSize, c.MaxPoolSize))
	}
	if c.WarmPoolTarget < c.MinPoolSize || c.WarmPoolTarget > c.MaxPoolSize {
		errs = append(errs, fmt.Errorf("Backend.warm_pool_target: %d: expected a value from min_pool_size (%d) to max_pool_size (%d)",
			c.WarmPoolTarget, c.MinPoolSize, c.MaxPoolSize))
	}
	if c.RulePriorityToPod >= c.RulePriorityFromPod {
		errs = append(errs, fmt.Errorf("Backend.rule_priority_to_pod: %d: expected below rule_priority_from_pod (%d), so that traffic to a pod "+
			"on this node takes the main table before the ENI table would send it out of the node", c.RulePriorityToPod, c.RulePriorityFromPod))
	}
	if (c.AccessKeyID == "") != (c.AccessKeySecret == "") {
		errs = append(errs, errors.New("Backend.AccessKeyID and Backend.AccessKeySecret: give both or neither (the RAM role is used when neither)"))
	}
	return errors.Join(errs...)
}

// VSwitchesFor returns the vSwitches configured for zone, in the policy's order: as given (ordered) or shuffled
// afresh on every call (random). A zone not configured has none: an ENI must be created in its instance's zone,
// so the other zones' vSwitches are no fallback (Terway falls back to the instance's own vSwitch from metadata
// instead, which the caller knows and this configuration does not). The slice is the caller's.
func (c Config) VSwitchesFor(zone string) []string {
	ids := slices.Clone(c.VSwitches[zone])
	if c.VSwitchPolicy == PolicyRandom {
		rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	}
	return ids
}

// configWire is the canonical JSON form of a Config (MarshalJSON), which ParseConfig reads back to the same Config.
type configWire struct {
	Type                      string              `json:"Type"`
	VSwitches                 map[string][]string `json:"vswitches"`
	VSwitchSelectionPolicy    string              `json:"vswitch_selection_policy"`
	SecurityGroups            []string            `json:"security_groups"`
	PodSecurityGroups         []string            `json:"pod_security_groups,omitempty"`
	ENITags                   map[string]string   `json:"eni_tags,omitempty"`
	MinPoolSize               int                 `json:"min_pool_size"`
	WarmPoolTarget            int                 `json:"warm_pool_target"`
	MaxPoolSize               int                 `json:"max_pool_size"`
	IdleIPReclaimAfter        string              `json:"idle_ip_reclaim_after"`
	IdleIPReclaimBatchSize    int                 `json:"idle_ip_reclaim_batch_size"`
	IdleIPReclaimJitterFactor float64             `json:"idle_ip_reclaim_jitter_factor"`
	IPStack                   string              `json:"ip_stack"`
	ServiceCIDR               string              `json:"service_cidr,omitempty"`
	ClusterID                 string              `json:"cluster_id,omitempty"`
	RegionID                  string              `json:"region_id,omitempty"`
	VPCID                     string              `json:"vpc_id,omitempty"`
	RouteTableBase            int                 `json:"route_table_base"`
	RulePriorityToPod         int                 `json:"rule_priority_to_pod"`
	RulePriorityFromPod       int                 `json:"rule_priority_from_pod"`
	Cooldown                  string              `json:"cooldown"`
	IPReservationTTL          string              `json:"ip_reservation_ttl"`
	Checkpoint                string              `json:"checkpoint"`
	Socket                    string              `json:"socket"`
	ENIGCGrace                string              `json:"eni_gc_grace"`
	MTU                       int                 `json:"mtu"`
	Mode                      string              `json:"Mode"`
	ExclusiveWarmENIs         int                 `json:"exclusive_warm_enis"`
	HostStackCIDRs            []netip.Prefix      `json:"host_stack_cidrs,omitempty"`
	EnableENITrunking         bool                `json:"enable_eni_trunking,omitempty"`
	TrunkLink                 string              `json:"trunk_link"`
	AccessKeyID               string              `json:"AccessKeyID,omitempty"`
	AccessKeySecret           string              `json:"AccessKeySecret,omitempty"`
}

func (c Config) toWire() configWire {
	w := configWire{Type: configType, VSwitches: c.VSwitches, VSwitchSelectionPolicy: c.VSwitchPolicy, SecurityGroups: c.SecurityGroups,
		ENITags: c.ENITags, MinPoolSize: c.MinPoolSize, WarmPoolTarget: c.WarmPoolTarget, MaxPoolSize: c.MaxPoolSize,
		IdleIPReclaimAfter: c.IdleIPReclaimAfter.String(), IdleIPReclaimBatchSize: c.IdleIPReclaimBatchSize,
		IdleIPReclaimJitterFactor: c.IdleIPReclaimJitterFactor, IPStack: c.IPStack, ClusterID: c.ClusterID,
		RegionID: c.RegionID, VPCID: c.VPCID, RouteTableBase: c.RouteTableBase, RulePriorityToPod: c.RulePriorityToPod,
		RulePriorityFromPod: c.RulePriorityFromPod, Cooldown: c.Cooldown.String(), IPReservationTTL: c.IPReservationTTL.String(), Checkpoint: c.Checkpoint,
		Socket: c.Socket, ENIGCGrace: c.ENIGCGrace.String(), MTU: c.MTU, AccessKeyID: c.AccessKeyID,
		AccessKeySecret: c.AccessKeySecret, Mode: c.Mode, ExclusiveWarmENIs: c.ExclusiveWarmENIs, HostStackCIDRs: c.HostStackCIDRs}
	if c.ServiceCIDR.IsValid() {
		w.ServiceCIDR = c.ServiceCIDR.String()
	}
	w.PodSecurityGroups = c.PodSecurityGroups // podnet.go
	w.EnableENITrunking, w.TrunkLink = c.EnableENITrunking, c.TrunkLink
	return w
}

// MarshalJSON writes the Config as a Backend object with the canonical keys, which ParseConfig reads back to the
// same Config. It is the configuration itself, so it holds the AccessKeySecret: log String() (or the Config
// through fmt or slog), never this.
func (c Config) MarshalJSON() ([]byte, error) { return json.Marshal(c.toWire()) }

// secretMarker is what the secret reads as wherever a Config is printed.
const secretMarker = "<redacted>"

// String is the effective configuration for the log: canonical JSON with the AccessKeySecret redacted.
func (c Config) String() string {
	w := c.toWire()
	if w.AccessKeySecret != "" {
		w.AccessKeySecret = secretMarker
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // "<redacted>", not "\u003credacted\u003e"
	_ = enc.Encode(w)        // strings, numbers, maps of strings: cannot fail
	return strings.TrimSuffix(b.String(), "\n")
}

// GoString is String: %#v must not print the secret either.
func (c Config) GoString() string { return c.String() }

// Format prints String for every verb (%v, %+v, %s, %q, %d ...), so no verb reaches the secret field.
func (c Config) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", c.String())
		return
	}
	io.WriteString(f, c.String())
}

// LogValue is String, for slog.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }
