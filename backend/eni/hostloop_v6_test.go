package eni

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/eni/checkpoint"
	"github.com/weftnet/weft/internal/eni/datapath"
)

// The IPv6 rules the host loop wants: one per Assigned dual-stack record on an ENI with a table; none for IPv4-only
// records, released ones, or ENIs without a table; a young allocation only once its rule is there.
func TestWantRules6(t *testing.T) {
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
		rec("10.0.0.6", "2001:db8::6", "eni-2", checkpoint.Assigned, 0),      // young, rule there
		rec("10.0.0.7", "2001:db8::7", "eni-2", checkpoint.Quarantined, old), // quarantined
	}
	tables := map[string]int{"eni-1": 1003, "eni-2": 1004}
	present := map[netip.Addr]bool{netip.MustParseAddr("2001:db8::6"): true}
	got := wantRules6(records, tables, now, present)
	want := []datapath.PodRule{{IP: netip.MustParseAddr("2001:db8::1"), Table: 1003}, {IP: netip.MustParseAddr("2001:db8::6"), Table: 1004}}
	if !slices.Equal(got, want) {
		t.Errorf("wantRules6: %v, want %v", got, want)
	}
}
