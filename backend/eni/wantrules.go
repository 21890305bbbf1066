package eni

// Which pod rules the host loop keeps (pure): the records' addresses on their ENIs' tables, for either family.

import (
	"net/netip"
	"time"

	"github.com/weftnet/weft/internal/eni/checkpoint"
	"github.com/weftnet/weft/internal/eni/datapath"
)

// wantRules is the rules the records call for: one per Assigned record whose address ip gives (IPv4 or IPv6; an
// invalid one: none) on an ENI with a table. A record younger than gcMinAge (its ADD may be under way) is wanted
// only once its "from" rule on that table is in present: the plugin adds that rule last, so before it the
// plugin is still adding rules and the loop adding them too made the plugin's own add fail with "file exists".
func wantRules(records []checkpoint.Record, tables map[string]int, now time.Time, present map[datapath.PodRule]bool,
	ip func(checkpoint.Record) netip.Addr) []datapath.PodRule {
	var want []datapath.PodRule
	for _, r := range records {
		a := ip(r)
		if r.State != checkpoint.Assigned || !a.IsValid() {
			continue
		}
		t, ok := tables[r.ENI]
		if !ok {
			continue
		}
		pr := datapath.PodRule{IP: a, Table: t}
		if now.Sub(r.AssignedAt) < gcMinAge && !present[pr] {
			continue
		}
		want = append(want, pr)
	}
	return want
}

func ipv4Of(r checkpoint.Record) netip.Addr { return r.IP }
func ipv6Of(r checkpoint.Record) netip.Addr { return r.IPv6 }

// anyYoung says whether a record of ip's family is Assigned within gcMinAge of now (the host must then be looked at).
func anyYoung(records []checkpoint.Record, now time.Time, ip func(checkpoint.Record) netip.Addr) bool {
	for _, r := range records {
		if r.State == checkpoint.Assigned && ip(r).IsValid() && now.Sub(r.AssignedAt) < gcMinAge {
			return true
		}
	}
	return false
}

// ruleSet is observed rules as a set.
func ruleSet(rules []datapath.PodRule) map[datapath.PodRule]bool {
	s := make(map[datapath.PodRule]bool, len(rules))
	for _, r := range rules {
		s[r] = true
	}
	return s
}
