package ruleset

import (
	"maps"
	"slices"
	"strings"

	"sigs.k8s.io/knftables"
)

// Table is the policy table's name (family inet).
const Table = "weft-policy"

// Base is the fixed part: the table, the forward base chain and the four dispatch maps.
func Base(tx *knftables.Transaction) {
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("weft NetworkPolicy")})
	tx.Add(&knftables.Chain{Name: "forward", Type: knftables.PtrTo(knftables.FilterType), Hook: knftables.PtrTo(knftables.ForwardHook),
		Priority: knftables.PtrTo(knftables.FilterPriority), Comment: knftables.PtrTo("pod traffic by the pods' policies")})
	for _, m := range []struct{ name, typ string }{{MapEgress4, "ipv4_addr"}, {MapEgress6, "ipv6_addr"}, {MapIngress4, "ipv4_addr"}, {MapIngress6, "ipv6_addr"}} {
		tx.Add(&knftables.Map{Name: m.name, Type: m.typ + " : verdict"})
	}
}

// Full writes the whole ruleset into tx, replacing whatever the table held (its deny counters start again at 0):
// the first sync and the repair of drift.
func Full(tx *knftables.Transaction, rs *Ruleset) {
	Base(tx)
	tx.Delete(&knftables.Table{})
	Base(tx)
	for _, r := range BaseRules {
		tx.Add(&knftables.Rule{Chain: "forward", Rule: r})
	}
	Diff(tx, &Ruleset{}, rs)
}

// Diff writes into tx the changes that turn a table holding old into one holding rs, touching only the sets,
// chains, map elements and counters that differ. The order keeps every reference valid inside the transaction:
// new sets and counters, then chains, then the maps, then what is gone.
func Diff(tx *knftables.Transaction, old, rs *Ruleset) {
	for _, name := range sorted(rs.Counters) {
		if _, ok := old.Counters[name]; !ok {
			tx.Add(&knftables.Counter{Name: name, Comment: knftables.PtrTo(clip(rs.Counters[name].Comment()))})
		}
	}
	for _, name := range sorted(rs.Sets) {
		s, o := rs.Sets[name], old.Sets[name]
		if o == nil {
			set := &knftables.Set{Name: name, Type: s.Type, Comment: knftables.PtrTo(s.Comment)}
			if s.Interval {
				set.Flags = []knftables.SetFlag{knftables.IntervalFlag}
			}
			tx.Add(set)
			o = &Set{}
		}
		for _, e := range minus(s.Elements, o.Elements) {
			tx.Add(&knftables.Element{Set: name, Key: key(e)})
		}
		for _, e := range minus(o.Elements, s.Elements) {
			tx.Delete(&knftables.Element{Set: name, Key: key(e)})
		}
	}
	for _, name := range sorted(rs.Chains) {
		c, o := rs.Chains[name], old.Chains[name]
		if o != nil && slices.Equal(c.Rules, o.Rules) {
			continue
		}
		ch := &knftables.Chain{Name: name, Comment: knftables.PtrTo(c.Comment)}
		tx.Add(ch)
		if o != nil {
			tx.Flush(ch)
		}
		for _, r := range c.Rules {
			rule := &knftables.Rule{Chain: name, Rule: r.Rule}
			if r.Comment != "" {
				rule.Comment = knftables.PtrTo(clip(r.Comment))
			}
			tx.Add(rule)
		}
	}
	for _, m := range sorted(rs.Maps) {
		now, was := rs.Maps[m], old.Maps[m]
		for _, k := range sorted(was) {
			if v, ok := now[k]; !ok || v != was[k] {
				tx.Delete(&knftables.Element{Map: m, Key: []string{k}})
			}
		}
		for _, k := range sorted(now) {
			if v, ok := was[k]; !ok || v != now[k] {
				tx.Add(&knftables.Element{Map: m, Key: []string{k}, Value: []string{now[k]}})
			}
		}
	}
	for _, name := range sorted(old.Chains) {
		if _, ok := rs.Chains[name]; !ok {
			tx.Delete(&knftables.Chain{Name: name})
		}
	}
	for _, name := range sorted(old.Sets) {
		if _, ok := rs.Sets[name]; !ok {
			tx.Delete(&knftables.Set{Name: name})
		}
	}
	for _, name := range sorted(old.Counters) {
		if _, ok := rs.Counters[name]; !ok {
			tx.Delete(&knftables.Counter{Name: name})
		}
	}
}

// key splits a concatenated element ("10.0.0.1 . 80") into its parts.
func key(e string) []string { return strings.Split(e, " . ") }

func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if _, found := slices.BinarySearch(b, x); !found {
			out = append(out, x)
		}
	}
	return out
}

func sorted[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
