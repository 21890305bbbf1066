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
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The readers of Backend's values: JSON members, numbers, durations, paths, vSwitches, tags, cloud ids, each error naming the key.

// jsonMember is one key of a JSON object with its raw value.
type jsonMember struct {
	key   string
	value json.RawMessage
}

// jsonObjectMembers splits a JSON object into its members in order, keeping duplicates (which encoding/json would
// silently resolve to the last).
func jsonObjectMembers(raw json.RawMessage) ([]jsonMember, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	bad := func(err error) error { return fmt.Errorf("Backend (eni): expected a JSON object: %v", err) }
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, bad(err)
	}
	if tok == nil {
		if _, err := dec.Token(); err != io.EOF {
			return nil, bad(errors.New("data after null"))
		}
		return nil, nil // null: an empty object
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, bad(fmt.Errorf("found %v", tok))
	}
	var ms []jsonMember
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, bad(err)
		}
		key, _ := tok.(string) // inside an object a token here is always a key
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, bad(fmt.Errorf("value of %q: %v", key, err))
		}
		ms = append(ms, jsonMember{key, v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, bad(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, bad(errors.New("data after the object"))
	}
	return ms, nil
}

// cfgKeyErr is the error for a value of key that is not what was expected: it names the key and quotes the value
// (shortened).
func cfgKeyErr(key string, raw json.RawMessage, expected string) error {
	return fmt.Errorf("Backend.%s: %s: expected %s", key, quoteRaw(raw), expected)
}

// quoteRaw is a raw JSON value for an error message: compacted and shortened.
func quoteRaw(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		b.Reset()
		b.Write(raw)
	}
	s := b.String()
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

func cfgString(key string, raw json.RawMessage) (string, error) {
	var s string
	if raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", cfgKeyErr(key, raw, "a string")
	}
	return s, nil
}

// isJSONNumber: a JSON number, not a string strconv would also read ("Inf", "0x1p-2").
func isJSONNumber(raw json.RawMessage) bool {
	var n json.Number
	return raw[0] != '"' && json.Unmarshal(raw, &n) == nil
}

// cfgInt reads an integer from lo to hi (hi < 0: no upper bound of its own, at most 2^31-1).
func cfgInt(key string, lo, hi int, at func(*Config) *int, why ...string) func(*Config, json.RawMessage) error {
	expected := fmt.Sprintf("an integer from %d to %d", lo, hi)
	if hi < 0 { // no bound of its own: an int32
		hi, expected = math.MaxInt32, fmt.Sprintf("an integer >= %d", lo)
	}
	if len(why) > 0 {
		expected += " (" + why[0] + ")"
	}
	return func(c *Config, raw json.RawMessage) error {
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil || n < int64(lo) || n > int64(hi) {
			return cfgKeyErr(key, raw, expected)
		}
		*at(c) = int(n)
		return nil
	}
}

func cfgDuration(key string, least time.Duration, at func(*Config) *time.Duration, why ...string) func(*Config, json.RawMessage) error {
	expected := fmt.Sprintf("a duration such as %q of at least %v", "10m", least)
	if len(why) > 0 {
		expected += " (" + why[0] + ")"
	}
	return func(c *Config, raw json.RawMessage) error {
		s, err := cfgString(key, raw)
		if err != nil {
			return cfgKeyErr(key, raw, expected)
		}
		d, err := time.ParseDuration(s)
		if err != nil || d < least {
			return cfgKeyErr(key, raw, expected)
		}
		*at(c) = d
		return nil
	}
}

func cfgPath(key string, longest int, at func(*Config) *string) func(*Config, json.RawMessage) error {
	return func(c *Config, raw json.RawMessage) error {
		s, err := cfgString(key, raw)
		if err != nil {
			return err
		}
		if !filepath.IsAbs(s) || filepath.Clean(s) != s || s == "/" || len(s) > longest || strings.ContainsRune(s, 0) {
			return cfgKeyErr(key, raw, fmt.Sprintf("an absolute, clean file path of at most %d bytes", longest))
		}
		*at(c) = s
		return nil
	}
}

func parseVSwitchesKey(c *Config, raw json.RawMessage) error {
	var byZone map[string][]string
	if raw[0] != '{' || json.Unmarshal(raw, &byZone) != nil {
		return cfgKeyErr("vswitches", raw, `an object of zone -> vSwitch ids: {"cn-hangzhou-h": ["vsw-..."]}`)
	}
	zoneOf := map[string]string{}
	out := make(map[string][]string, len(byZone))
	zones := make([]string, 0, len(byZone))
	for z := range byZone {
		zones = append(zones, z)
	}
	sort.Strings(zones) // the same error for the same input
	for _, z := range zones {
		if !validRegionID(z) {
			return cfgKeyErr("vswitches", raw, fmt.Sprintf(`zone ids such as "cn-hangzhou-h" as keys, not %q`, z))
		}
		for _, id := range byZone[z] {
			if !validCloudID(id, "vsw-") {
				return cfgKeyErr("vswitches", raw, fmt.Sprintf("vSwitch ids (vsw-...), not %q in zone %s", id, z))
			}
			if other, seen := zoneOf[id]; seen && other != z {
				return cfgKeyErr("vswitches", raw, fmt.Sprintf("each vSwitch in one zone only, not %s in %s and %s", id, other, z))
			}
			zoneOf[id] = z
		}
		if ids := dedupeStrings(byZone[z]); len(ids) > 0 {
			out[z] = ids
		}
	}
	if len(out) == 0 {
		out = nil
	}
	c.VSwitches = out
	return nil
}

func parseENITagsKey(c *Config, raw json.RawMessage) error {
	var tags map[string]string
	if raw[0] != '{' || json.Unmarshal(raw, &tags) != nil {
		return cfgKeyErr("eni_tags", raw, `an object of tag key -> value: {"team": "net"}`)
	}
	if len(tags) > MaxENITags {
		return cfgKeyErr("eni_tags", raw, fmt.Sprintf("at most %d tags (an ENI carries 20, weft's own take 4)", MaxENITags))
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.HasPrefix(strings.ToLower(k), ReservedTagPrefix) {
			return cfgKeyErr("eni_tags", raw, fmt.Sprintf("tag keys outside weft's own prefix %s, not %q", ReservedTagPrefix, k))
		}
		if why := tagKeyProblem(k); why != "" {
			return cfgKeyErr("eni_tags", raw, fmt.Sprintf("valid tag keys: %q %s", k, why))
		}
		if why := tagValueProblem(tags[k]); why != "" {
			return cfgKeyErr("eni_tags", raw, fmt.Sprintf("valid tag values: the value of %q %s", k, why))
		}
	}
	if len(tags) == 0 {
		tags = nil
	}
	c.ENITags = tags
	return nil
}

// tagKeyProblem says why k is no Alibaba Cloud tag key ("" when it is one): 1 to 128 characters, not starting
// with aliyun or acs:, no http:// or https://.
func tagKeyProblem(k string) string {
	l := strings.ToLower(k)
	switch {
	case k == "":
		return "is empty"
	case len([]rune(k)) > 128:
		return "is longer than 128 characters"
	case strings.HasPrefix(l, "aliyun") || strings.HasPrefix(l, "acs:"):
		return "starts with aliyun or acs: (reserved by Alibaba Cloud)"
	case strings.Contains(l, "http://") || strings.Contains(l, "https://"):
		return "contains http:// or https://"
	}
	return ""
}

// tagValueProblem says why v is no Alibaba Cloud tag value ("" when it is one): at most 128 characters, not
// starting with acs:, no http:// or https://.
func tagValueProblem(v string) string {
	l := strings.ToLower(v)
	switch {
	case len([]rune(v)) > 128:
		return "is longer than 128 characters"
	case strings.HasPrefix(l, "acs:"):
		return "starts with acs: (reserved by Alibaba Cloud)"
	case strings.Contains(l, "http://") || strings.Contains(l, "https://"):
		return "contains http:// or https://"
	}
	return ""
}

// validCloudID: prefix followed by at least one lower-case letter or digit, as Alibaba Cloud spells its ids
// (vsw-bp1..., sg-bp1..., vpc-bp1...).
func validCloudID(s, prefix string) bool {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok || rest == "" || len(s) > 64 {
		return false
	}
	for _, r := range rest {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// validRegionID: a region or zone id such as cn-hangzhou or cn-hangzhou-h: lower-case letters, digits and inner
// dashes.
func validRegionID(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// dedupeStrings keeps the first of each value, in order; nil when none.
func dedupeStrings(ss []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
