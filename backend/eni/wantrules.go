package eni

// Which pod rules the host loop keeps (pure): the records' addresses on their ENIs' tables, for either family.

import (
	"net/netip"
	"time"

	"github.com/weftnet/weft/internal/eni/checkpoint"
	"github.com/weftnet/weft/internal/eni/datapath"
)

// wantRules is the rules the records call for: one per Assigned record whose address ip gives (IPv4 or IPv6; an
// invalid one: none) on an ENI with a table. A record younger than gcMinAge whose address has no rule in present
// may be a pod whose ADD has not reached its rules yet: its address is held instead (the loop neither adds nor
// removes its rules; one the plugin adds between the loop's look and its sync stays). Once the address has any
// rule the ADD has begun, and the loop keeps both right (the plugin takes a rule the loop added first as done),
// so a rule removed by hand from a new pod comes back at once.
func wantRules(records []checkpoint.Record, tables map[string]int, now time.Time, present map[netip.Addr]bool,
	ip func(checkpoint.Record) netip.Addr) (want []datapath.PodRule, hold []netip.Addr) {
	for _, r := range records {
		a := ip(r)
		if r.State != checkpoint.Assigned || !a.IsValid() {
			continue
		}
		t, ok := tables[r.ENI]
		if !ok {
			continue
		}
		if now.Sub(r.AssignedAt) < gcMinAge && !present[a] {
			hold = append(hold, a)
			continue
		}
		want = append(want, datapath.PodRule{IP: a, Table: t})
	}
	return want, hold
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

// ruleAddrs is the addresses that observed rules ("to" or "from", on any table) are for.
func ruleAddrs(rules []datapath.PodRule) map[netip.Addr]bool {
	s := make(map[netip.Addr]bool, len(rules))
	for _, r := range rules {
		s[r.IP] = true
	}
	return s
}
