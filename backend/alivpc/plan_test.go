package alivpc

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/cloud/routetable"
)

const (
	us   = "weft:a" // this cluster
	them = "weft:b" // another weft cluster sharing the table
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// ent is a custom entry; status "" is Available.
func ent(id, dst, hop, desc, status string) aliyun.RouteEntry {
	if status == "" {
		status = "Available"
	}
	return aliyun.RouteEntry{ID: id, TableID: "vtb-1", Dst: netip.MustParsePrefix(dst), Type: "Custom", Status: routetable.EntryStatus(status),
		NextHopType: "Instance", NextHopID: hop, Description: desc}
}

func sys(id, dst string) aliyun.RouteEntry {
	return aliyun.RouteEntry{ID: id, TableID: "vtb-1", Dst: netip.MustParsePrefix(dst), Type: "System", Status: "Available", NextHopType: "local"}
}

func want(node, dst, hop string) Want {
	return Want{Node: node, Dst: netip.MustParsePrefix(dst), Instance: hop}
}

// render is a plan as sorted lines: what it writes, keeps and refuses, each node's state, and the usage.
func render(p TablePlan) []string {
	var out []string
	for _, c := range p.Creates {
		out = append(out, fmt.Sprintf("create %s via %s for %s [%s] %s", c.Entry.Dst, c.Entry.NextHopID, c.Node, c.Entry.Description, c.Entry.Name))
	}
	for _, d := range p.Deletes {
		s := "delete " + d.Entry.ID
		if d.Node != "" {
			s += " (moved " + d.Node + ")"
		}
		out = append(out, s)
	}
	for _, a := range p.Adopted {
		out = append(out, fmt.Sprintf("adopt %s for %s owned=%v", a.Entry.ID, a.Node, a.Owned))
	}
	for _, c := range p.Conflicts {
		out = append(out, fmt.Sprintf("conflict %s for %s held by %q", c.Want.Dst, c.Want.Node, c.Entry.ID))
	}
	for _, w := range p.Withheld {
		out = append(out, fmt.Sprintf("withheld %s for %s", w.Dst, w.Node))
	}
	for n, st := range p.Nodes {
		if st.Routed {
			out = append(out, "node "+n+" routed")
		} else {
			out = append(out, "node "+n+" "+st.Reason)
		}
	}
	u := p.Usage
	out = append(out, fmt.Sprintf("usage custom=%d owned=%d otherweft=%d foreign=%d", u.Custom, u.Owned, u.OtherWeft, u.Foreign()))
	sort.Strings(out)
	return out
}

func TestPlanTable(t *testing.T) {
	two := []Want{want("n1", "10.244.1.0/24", "i-1"), want("n2", "10.244.2.0/24", "i-2")}
	base := []aliyun.RouteEntry{sys("rte-s1", "192.168.0.0/24"), sys("rte-s2", "100.64.0.0/10")}
	with := func(es ...aliyun.RouteEntry) []aliyun.RouteEntry {
		return append(append([]aliyun.RouteEntry(nil), base...), es...)
	}
	cases := []struct {
		name string
		in   TableInput
		want []string
	}{
		{"empty table: one create per want, owned and named", TableInput{Entries: base, Wants: two}, []string{
			"create 10.244.1.0/24 via i-1 for n1 [weft:a] weft-10.244.1.0-24",
			"create 10.244.2.0/24 via i-2 for n2 [weft:a] weft-10.244.2.0-24",
			"node n1 RoutePending", "node n2 RoutePending",
			"usage custom=0 owned=0 otherweft=0 foreign=0"}},
		{"our Available entries are adopted: routed, nothing written", TableInput{Wants: two, Entries: with(
			ent("rte-1", "10.244.1.0/24", "i-1", us, ""), ent("rte-2", "10.244.2.0/24", "i-2", us, ""))}, []string{
			"adopt rte-1 for n1 owned=true", "adopt rte-2 for n2 owned=true",
			"node n1 routed", "node n2 routed",
			"usage custom=2 owned=2 otherweft=0 foreign=0"}},
		{"an unowned entry at the right next hop is adopted as it is", TableInput{Wants: two, Entries: with(
			ent("rte-1", "10.244.1.0/24", "i-1", "made by hand", ""), ent("rte-2", "10.244.2.0/24", "i-2", "", "Pending"))}, []string{
			"adopt rte-1 for n1 owned=false", "adopt rte-2 for n2 owned=false",
			"node n1 routed", "node n2 RoutePending",
			"usage custom=2 owned=0 otherweft=0 foreign=2"}},
		{"a foreign entry pointing elsewhere is a conflict, never overwritten", TableInput{Wants: two, Entries: with(
			ent("rte-1", "10.244.1.0/24", "i-3", "", ""), ent("rte-2", "10.244.2.0/24", "i-3", "ops", "Pending"))}, []string{
			`conflict 10.244.1.0/24 for n1 held by "rte-1"`, `conflict 10.244.2.0/24 for n2 held by "rte-2"`,
			"node n1 RouteConflict", "node n2 RouteConflict",
			"usage custom=2 owned=0 otherweft=0 foreign=2"}},
		{"our own stale entry (the node moved) is replaced", TableInput{Wants: two, Entries: with(
			ent("rte-1", "10.244.1.0/24", "i-3", us, ""), ent("rte-2", "10.244.2.0/24", "i-2", us, ""))}, []string{
			"adopt rte-2 for n2 owned=true",
			"create 10.244.1.0/24 via i-1 for n1 [weft:a] weft-10.244.1.0-24", "delete rte-1 (moved n1)",
			"node n1 RoutePending", "node n2 routed",
			"usage custom=2 owned=2 otherweft=0 foreign=0"}},
		{"gone nodes: only our own entries are deleted", TableInput{Wants: two[:1], Entries: with(
			ent("rte-1", "10.244.1.0/24", "i-1", us, ""), ent("rte-2", "10.244.2.0/24", "i-2", us, ""),
			ent("rte-3", "10.244.3.0/24", "i-2", us, "Pending"), ent("rte-4", "10.244.4.0/24", "i-2", "", ""),
			ent("rte-5", "10.244.5.0/24", "i-2", them, ""), ent("rte-6", "172.30.0.0/16", "i-3", "weft", ""))}, []string{
			"adopt rte-1 for n1 owned=true", "delete rte-2", "delete rte-3",
			"node n1 routed",
			"usage custom=6 owned=3 otherweft=1 foreign=2"}},
		{"two weft clusters share a table: each touches only its own tag", TableInput{Owner: us, Entries: with(
			ent("rte-b1", "10.244.1.0/24", "i-1", them, ""),    // theirs, right hop: adopted, not ours
			ent("rte-b2", "10.244.2.0/24", "i-3", them, ""),    // theirs, wrong hop: a conflict, not a stale entry of ours
			ent("rte-b3", "10.245.9.0/24", "i-3", them, ""),    // theirs, unwanted here: left alone
			ent("rte-a9", "10.244.9.0/24", "i-3", us, ""),      // ours, gone
			ent("rte-x", "10.244.8.0/24", "i-3", "weft:", "")), // a bare prefix is another cluster's too, not ours
			Wants: two}, []string{
			"adopt rte-b1 for n1 owned=false", `conflict 10.244.2.0/24 for n2 held by "rte-b2"`, "delete rte-a9",
			"node n1 routed", "node n2 RouteConflict",
			"usage custom=5 owned=1 otherweft=4 foreign=0"}},
		{"dual stack: one entry per family; routed only when both are", TableInput{Entries: with(
			ent("rte-1", "10.244.1.0/24", "i-1", us, ""), ent("rte-2", "10.244.2.0/24", "i-2", us, ""),
			ent("rte-3", "fd00:244:0:2::/64", "i-2", us, "")), Wants: []Want{
			want("n1", "10.244.1.0/24", "i-1"), want("n1", "fd00:244:0:1::/64", "i-1"),
			want("n2", "10.244.2.0/24", "i-2"), want("n2", "fd00:244:0:2::/64", "i-2")}}, []string{
			"adopt rte-1 for n1 owned=true", "adopt rte-2 for n2 owned=true", "adopt rte-3 for n2 owned=true",
			"create fd00:244:0:1::/64 via i-1 for n1 [weft:a] weft-fd00:244:0:1::-64",
			"node n1 RoutePending", "node n2 routed",
			"usage custom=3 owned=3 otherweft=0 foreign=0"}},
		{"dual stack: the worse family decides the reason", TableInput{Entries: with(
			ent("rte-1", "10.244.1.0/24", "i-1", us, ""), ent("rte-2", "fd00:244:0:1::/64", "i-3", "", "")), Wants: []Want{
			want("n1", "10.244.1.0/24", "i-1"), want("n1", "fd00:244:0:1::/64", "i-1")}}, []string{
			"adopt rte-1 for n1 owned=true", `conflict fd00:244:0:1::/64 for n1 held by "rte-2"`,
			"node n1 RouteConflict",
			"usage custom=2 owned=1 otherweft=0 foreign=1"}},
		{"dual stack: a conflict in the first family is not hidden by the second", TableInput{Entries: with(
			ent("rte-1", "10.244.1.0/24", "i-3", "", "")), Wants: []Want{
			want("n1", "10.244.1.0/24", "i-1"), want("n1", "fd00:244:0:1::/64", "i-1")}}, []string{
			`conflict 10.244.1.0/24 for n1 held by "rte-1"`,
			"create fd00:244:0:1::/64 via i-1 for n1 [weft:a] weft-fd00:244:0:1::-64",
			"node n1 RouteConflict",
			"usage custom=1 owned=0 otherweft=0 foreign=1"}},
		{"Deleting entries are neither deleted again nor in the way", TableInput{Wants: two, Entries: with(
			ent("rte-1", "10.244.1.0/24", "i-1", us, "Deleting"),             // ours going away: made again once gone
			ent("rte-2", "10.244.2.0/24", "i-3", "", "Deleting"),             // foreign, wrong hop, going away: no conflict
			ent("rte-3", "10.244.3.0/24", "i-3", us, "Deleting"))}, []string{ // ours, unwanted, already going
			"create 10.244.1.0/24 via i-1 for n1 [weft:a] weft-10.244.1.0-24",
			"create 10.244.2.0/24 via i-2 for n2 [weft:a] weft-10.244.2.0-24",
			"node n1 RoutePending", "node n2 RoutePending",
			"usage custom=3 owned=2 otherweft=0 foreign=1"}},
		{"system entries: never touched nor counted; one at a wanted destination is a conflict", TableInput{
			Wants: []Want{want("n1", "10.244.1.0/24", "i-1"), want("n9", "192.168.0.0/24", "i-1")}, Entries: base}, []string{
			"create 10.244.1.0/24 via i-1 for n1 [weft:a] weft-10.244.1.0-24",
			`conflict 192.168.0.0/24 for n9 held by "rte-s1"`,
			"node n1 RoutePending", "node n9 RouteConflict",
			"usage custom=0 owned=0 otherweft=0 foreign=0"}},
		{"a destination wanted by two nodes goes to the first", TableInput{Entries: base, Wants: []Want{
			want("n2", "10.244.1.0/24", "i-2"), want("n1", "10.244.1.0/24", "i-1"), want("n1", "10.244.1.0/24", "i-1")}}, []string{
			"create 10.244.1.0/24 via i-1 for n1 [weft:a] weft-10.244.1.0-24",
			`conflict 10.244.1.0/24 for n2 held by ""`,
			"node n1 RoutePending", "node n2 RouteConflict",
			"usage custom=0 owned=0 otherweft=0 foreign=0"}},
		{"quota: a blocked table gets no create while unchanged and within QuotaRetry", TableInput{Wants: two,
			Entries: with(ent("rte-9", "10.9.0.0/16", "i-3", "", "")), Block: &QuotaBlock{Custom: 1, At: t0},
			QuotaRetry: 5 * time.Minute, Now: t0.Add(4 * time.Minute)}, []string{
			"withheld 10.244.1.0/24 for n1", "withheld 10.244.2.0/24 for n2",
			"node n1 RouteTableQuotaExceeded", "node n2 RouteTableQuotaExceeded",
			"usage custom=1 owned=0 otherweft=0 foreign=1"}},
		{"quota: a blocked table is tried again after QuotaRetry", TableInput{Wants: two[:1],
			Entries: with(ent("rte-9", "10.9.0.0/16", "i-3", "", "")), Block: &QuotaBlock{Custom: 1, At: t0},
			QuotaRetry: 5 * time.Minute, Now: t0.Add(5 * time.Minute)}, []string{
			"create 10.244.1.0/24 via i-1 for n1 [weft:a] weft-10.244.1.0-24", "node n1 RoutePending",
			"usage custom=1 owned=0 otherweft=0 foreign=1"}},
		{"quota: the default QuotaRetry is one minute (still blocked at 59 s)", TableInput{Wants: two[:1],
			Entries: base, Block: &QuotaBlock{Custom: 0, At: t0}, Now: t0.Add(59 * time.Second)}, []string{
			"withheld 10.244.1.0/24 for n1", "node n1 RouteTableQuotaExceeded",
			"usage custom=0 owned=0 otherweft=0 foreign=0"}},
		{"quota: the default QuotaRetry is one minute (tried again at 60 s)", TableInput{Wants: two[:1],
			Entries: base, Block: &QuotaBlock{Custom: 0, At: t0}, Now: t0.Add(time.Minute)}, []string{
			"create 10.244.1.0/24 via i-1 for n1 [weft:a] weft-10.244.1.0-24", "node n1 RoutePending",
			"usage custom=0 owned=0 otherweft=0 foreign=0"}},
		{"quota: a changed entry count retries at once", TableInput{Wants: two[:1],
			Entries: base, Block: &QuotaBlock{Custom: 1, At: t0}, QuotaRetry: time.Hour, Now: t0.Add(time.Second)}, []string{
			"create 10.244.1.0/24 via i-1 for n1 [weft:a] weft-10.244.1.0-24", "node n1 RoutePending",
			"usage custom=0 owned=0 otherweft=0 foreign=0"}},
		{"quota: a plan that deletes makes room and retries at once", TableInput{Wants: two[:1],
			Entries: with(ent("rte-9", "10.244.9.0/24", "i-3", us, "")), Block: &QuotaBlock{Custom: 1, At: t0}, QuotaRetry: time.Hour,
			Now: t0.Add(time.Second)}, []string{
			"create 10.244.1.0/24 via i-1 for n1 [weft:a] weft-10.244.1.0-24", "delete rte-9", "node n1 RoutePending",
			"usage custom=1 owned=1 otherweft=0 foreign=0"}},
		{"quota known: creates beyond the free room are withheld; deletes and Deleting entries free room", TableInput{
			Quota: 4, Entries: with(ent("rte-1", "10.9.0.0/16", "i-3", "", ""), ent("rte-2", "10.8.0.0/16", "i-3", "", ""),
				ent("rte-3", "10.7.0.0/16", "i-3", "", "Deleting"), ent("rte-4", "10.244.9.0/24", "i-3", us, "")),
			Wants: []Want{want("n1", "10.244.1.0/24", "i-1"), want("n2", "10.244.2.0/24", "i-2"), want("n3", "10.244.3.0/24", "i-3")}}, []string{
			"create 10.244.1.0/24 via i-1 for n1 [weft:a] weft-10.244.1.0-24",
			"create 10.244.2.0/24 via i-2 for n2 [weft:a] weft-10.244.2.0-24", "delete rte-4",
			"node n1 RoutePending", "node n2 RoutePending", "node n3 RouteTableQuotaExceeded", "withheld 10.244.3.0/24 for n3",
			"usage custom=4 owned=1 otherweft=0 foreign=3"}},
		{"creates that failed this pass report their reason", TableInput{Entries: base, Wants: two,
			Failed: map[netip.Prefix]string{netip.MustParsePrefix("10.244.1.0/24"): ReasonThrottle}}, []string{
			"create 10.244.1.0/24 via i-1 for n1 [weft:a] weft-10.244.1.0-24",
			"create 10.244.2.0/24 via i-2 for n2 [weft:a] weft-10.244.2.0-24",
			"node n1 Throttled", "node n2 RoutePending",
			"usage custom=0 owned=0 otherweft=0 foreign=0"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.ID = "vtb-1"
			if tc.in.Owner == "" {
				tc.in.Owner = us
			}
			if tc.in.Now.IsZero() {
				tc.in.Now = t0
			}
			got := render(PlanTable(tc.in))
			want := append([]string(nil), tc.want...)
			sort.Strings(want)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("plan:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
		})
	}
}

// The plan does not depend on the order the API lists entries in or the order wants arrive in.
func TestPlanTableOrderIndependent(t *testing.T) {
	var entries []aliyun.RouteEntry
	var wants []Want
	hops := []string{"i-1", "i-2", "i-3"}
	descs := []string{us, them, "", "ops"}
	statuses := []string{"Available", "Pending", "Deleting"}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 60; i++ {
		entries = append(entries, ent(fmt.Sprintf("rte-%02d", i), fmt.Sprintf("10.244.%d.0/24", i), hops[r.IntN(3)],
			descs[r.IntN(4)], statuses[r.IntN(3)]))
	}
	for i := 0; i < 80; i += 2 {
		wants = append(wants, want(fmt.Sprintf("n%d", i/4), fmt.Sprintf("10.244.%d.0/24", i), hops[r.IntN(3)]))
	}
	in := TableInput{ID: "vtb-1", Owner: us, Entries: entries, Wants: wants, Quota: 70, Now: t0}
	ref := strings.Join(render(PlanTable(in)), "\n")
	for i := 0; i < 20; i++ {
		r.Shuffle(len(in.Entries), func(a, b int) { in.Entries[a], in.Entries[b] = in.Entries[b], in.Entries[a] })
		r.Shuffle(len(in.Wants), func(a, b int) { in.Wants[a], in.Wants[b] = in.Wants[b], in.Wants[a] })
		if got := strings.Join(render(PlanTable(in)), "\n"); got != ref {
			t.Fatalf("shuffle %d changed the plan:\n%s\nwant:\n%s", i, got, ref)
		}
	}
}
