package eni

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/eni/checkpoint"
	"github.com/weftnet/weft/internal/eni/datapath"
)

// The rules the host loop wants, for each family: one per Assigned record of that family on an ENI with a table;
// none for released or quarantined records or ENIs without a table; a young allocation with no rule yet is held
// (its ADD may not have reached its rules: the loop must neither add them nor remove one the plugin adds
// meanwhile), and one with any rule is wanted whole (a "from" rule removed by hand from a new pod came back only
// after a minute when such a record was held too: CI's TestENI).
func TestWantRules(t *testing.T) {
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	rec := func(v4, v6, eni string, st checkpoint.State, age time.Duration) checkpoint.Record {
		r := checkpoint.Record{IP: netip.MustParseAddr(v4), ENI: eni, State: st, AssignedAt: now.Add(-age)}
		if v6 != "" {
			r.IPv6 = netip.MustParseAddr(v6)
		}
		return r
	}
	old := 10 * gcMinAge
	records := []checkpoint.Record{
		rec("10.0.0.1", "2001:db8::1", "eni-1", checkpoint.Assigned, old),
		rec("10.0.0.2", "", "eni-1", checkpoint.Assigned, old),               // IPv4 only
		rec("10.0.0.3", "2001:db8::3", "eni-1", checkpoint.Cooldown, old),    // released
		rec("10.0.0.4", "2001:db8::4", "eni-9", checkpoint.Assigned, old),    // no table
		rec("10.0.0.5", "2001:db8::5", "eni-2", checkpoint.Assigned, 0),      // young, no rule yet
		rec("10.0.0.6", "2001:db8::6", "eni-2", checkpoint.Assigned, 0),      // young, "from" rule there
		rec("10.0.0.7", "2001:db8::7", "eni-1", checkpoint.Quarantined, old), // quarantined
		rec("10.0.0.8", "2001:db8::8", "eni-2", checkpoint.Assigned, 0),      // young, only its "to" rule
		rec("10.0.0.9", "2001:db8::9", "eni-2", checkpoint.Assigned, 0),      // young, "from" on a stale table
		rec("10.0.0.10", "", "eni-2", checkpoint.Assigned, 0),                // young IPv4-only, no rule yet
	}
	tables := map[string]int{"eni-1": 1003, "eni-2": 1004}
	pr := func(ip string, table int) datapath.PodRule {
		return datapath.PodRule{IP: netip.MustParseAddr(ip), Table: table}
	}
	for _, tc := range []struct {
		family   string
		ip       func(checkpoint.Record) netip.Addr
		observed []datapath.PodRule
		want     []datapath.PodRule
		hold     []netip.Addr
	}{
		{"IPv4", ipv4Of,
			[]datapath.PodRule{pr("10.0.0.6", 1004), pr("10.0.0.8", 254), pr("10.0.0.9", 1099)},
			[]datapath.PodRule{pr("10.0.0.1", 1003), pr("10.0.0.2", 1003), pr("10.0.0.6", 1004), pr("10.0.0.8", 1004), pr("10.0.0.9", 1004)},
			[]netip.Addr{netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("10.0.0.10")}},
		{"IPv6", ipv6Of,
			[]datapath.PodRule{pr("2001:db8::6", 1004), pr("2001:db8::8", 254), pr("2001:db8::9", 1099)},
			[]datapath.PodRule{pr("2001:db8::1", 1003), pr("2001:db8::6", 1004), pr("2001:db8::8", 1004), pr("2001:db8::9", 1004)},
			[]netip.Addr{netip.MustParseAddr("2001:db8::5")}},
	} {
		if !anyYoung(records, now, tc.ip) {
			t.Errorf("%s: anyYoung false with young records", tc.family)
		}
		got, hold := wantRules(records, tables, now, ruleAddrs(tc.observed), tc.ip)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: wantRules %v, want %v", tc.family, got, tc.want)
		}
		if !slices.Equal(hold, tc.hold) {
			t.Errorf("%s: wantRules holds %v, want %v", tc.family, hold, tc.hold)
		}
	}
	if anyYoung(records[:4], now, ipv4Of) {
		t.Error("anyYoung true with only old records")
	}
}
