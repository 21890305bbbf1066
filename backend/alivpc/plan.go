package alivpc

// The planner is the pure half of the route controller: from one table's observed entries, the wanted routes and
// this cluster's owner tag it decides what to create, delete, adopt and leave alone, and what each node's route
// state is. It does no I/O and reads no clock, so every rule of route ownership is tested here, table by table.
//
// The rules (unchanged from the controller that did both halves at once):
//   - only custom entries are weft's business; system (and other non-custom) entries are never touched;
//   - an entry at a wanted destination pointing at the wanted instance is adopted as it is, whoever made it;
//   - an entry of this cluster (Description == owner) at a wanted destination pointing elsewhere is our own
//     stale entry (the node moved): it is deleted and the right one created;
//   - any other entry at a wanted destination pointing elsewhere is a RouteConflict: never overwritten;
//   - an entry of this cluster at a destination nobody wants is deleted (its node is gone); every other unwanted
//     entry, another weft cluster's included, is left alone;
//   - creates stop while the service refused one with QuotaExceeded and the table has not changed since, until
//     QuotaRetry has passed.

import (
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/cloud/routetable"
)

// OwnerPrefix starts the Description of every weft cluster's entries ("weft:<cluster>").
const OwnerPrefix = routetable.OwnerPrefix

// DefaultQuotaRetry is how long a full table is left alone when Controller.QuotaRetry is zero: one create a
// minute against a full table is no retry storm, and a raised quota is used within a minute.
const DefaultQuotaRetry = time.Minute

// QuotaBlock records that the service refused a create in a table with QuotaExceeded: the table's custom-entry
// count then, and when.
type QuotaBlock struct {
	Custom int
	At     time.Time
}

// TableInput is everything the planner looks at for one table.
type TableInput struct {
	ID      string
	Entries []aliyun.RouteEntry // as listed
	Wants   []Want
	Owner   string // this cluster's tag: entries whose Description is exactly this are ours
	// Quota is the table's custom-entry quota when the cloud reported it; creates beyond the free room are
	// withheld. 0: unknown, the service's QuotaExceeded decides. Never pass a configured guess: a table whose
	// quota was raised would read as full.
	Quota int
	// Block is set when QuotaExceeded stopped creates here; while the custom-entry count is unchanged and
	// QuotaRetry has not passed since Block.At (and the plan deletes nothing), no create is tried.
	Block      *QuotaBlock
	QuotaRetry time.Duration
	Now        time.Time
	// Failed are the reasons creates failed in this pass (Executor.Apply's Applied.Failed), reported instead of
	// RoutePending for destinations still without their entry.
	Failed map[netip.Prefix]string
}

// TablePlan is what should happen to one table, and the state it leaves each wanted node in.
type TablePlan struct {
	Table     string
	Creates   []Create // in node order; the executor writes them after the deletes
	Deletes   []Delete
	Adopted   []Adoption
	Conflicts []Conflict
	Withheld  []Want               // creates not tried: the table is full (quota known or QuotaExceeded)
	Nodes     map[string]NodeState // by Want.Node, every family of the node folded into one state
	Usage     TableUsage           // the table as observed
}

// Writes reports whether the plan changes the table.
func (p TablePlan) Writes() bool { return len(p.Creates)+len(p.Deletes) > 0 }

// Create is one entry to create for a node.
type Create struct {
	Node  string
	Entry aliyun.NewRouteEntry
}

// Delete is one of our entries to delete; Node is set when the node still exists but moved to another instance.
type Delete struct {
	Entry aliyun.RouteEntry
	Node  string
}

// Adoption is an existing entry that already routes a wanted destination to the right instance; Owned says
// whether it carries our tag (false: made by hand or by another weft cluster, kept and never deleted by us).
type Adoption struct {
	Node  string
	Entry aliyun.RouteEntry
	Owned bool
}

// Conflict is a wanted destination held by an entry that is not ours to change.
type Conflict struct {
	Want  Want
	Entry aliyun.RouteEntry // zero when the destination is claimed twice among the wants
}

// TableUsage is one table's custom entries: Custom (= Used) all of them, Owned this cluster's (exact owner tag),
// OtherWeft those of other weft clusters (tag "weft:..." but not ours); the rest are foreign. It feeds the quota
// metrics.
type TableUsage struct {
	ID                  string
	Used, Owned, Custom int
	OtherWeft           int
}

// Foreign is the custom entries of neither this nor another weft cluster.
func (u TableUsage) Foreign() int { return u.Custom - u.Owned - u.OtherWeft }

// CountUsage counts a table's entries by the one rule weft quota uses too (routetable.Count): every custom entry
// counts (Pending and Deleting ones too: the service counts them against the quota until they are gone); this
// cluster's are those whose Description is exactly owner, other weft clusters' are reported apart.
func CountUsage(id string, entries []aliyun.RouteEntry, owner string) TableUsage {
	u := routetable.Count(entries, owner)
	return TableUsage{ID: id, Used: u.Custom, Custom: u.Custom, Owned: u.Own, OtherWeft: u.OtherWeft}
}

// PlanTable decides one table. It is pure: the same input always gives the same plan, whatever the order of
// entries and wants.
func PlanTable(in TableInput) TablePlan {
	p := TablePlan{Table: in.ID, Nodes: map[string]NodeState{}, Usage: CountUsage(in.ID, in.Entries, in.Owner)}
	wants := append([]Want(nil), in.Wants...)
	for i := range wants {
		wants[i].Dst = wants[i].Dst.Masked()
	}
	sort.SliceStable(wants, func(i, j int) bool {
		if wants[i].Node != wants[j].Node {
			return wants[i].Node < wants[j].Node
		}
		return wants[i].Dst.String() < wants[j].Dst.String()
	})
	// One want per destination: a destination claimed by two nodes goes to the first, the other is a conflict.
	byDst := map[netip.Prefix]Want{}
	var uniq []Want
	var states []nodeDst
	for _, w := range wants {
		if first, dup := byDst[w.Dst]; dup {
			if first.Instance != w.Instance || first.Node != w.Node {
				p.Conflicts = append(p.Conflicts, Conflict{Want: w})
				states = append(states, nodeDst{w.Node, NodeState{Reason: ReasonConflict}})
			}
			continue
		}
		byDst[w.Dst] = w
		uniq = append(uniq, w)
	}

	entries := append([]aliyun.RouteEntry(nil), in.Entries...)
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].ID < entries[j].ID })
	held := map[netip.Prefix]aliyun.RouteEntry{} // wanted destinations with a live entry we keep
	conflicted := map[netip.Prefix]bool{}
	leaving := 0 // custom entries that will be gone before any create: already Deleting, or deleted by this plan
	for _, e := range entries {
		w, wanted := byDst[e.Dst]
		if e.Type != routetable.EntryCustom {
			// Never ours to change; one at a wanted destination makes every create there fail.
			if wanted && !conflicted[e.Dst] {
				p.Conflicts = append(p.Conflicts, Conflict{Want: w, Entry: e})
				conflicted[e.Dst] = true
			}
			continue
		}
		if e.Status == routetable.StatusDeleting {
			leaving++ // on its way out; the executor waits until it is gone before writing
			continue
		}
		mine := e.Description == in.Owner
		switch {
		case wanted && e.NextHopID == w.Instance && !conflicted[e.Dst]:
			held[e.Dst] = e
			p.Adopted = append(p.Adopted, Adoption{Node: w.Node, Entry: e, Owned: mine})
		case wanted && mine:
			p.Deletes = append(p.Deletes, Delete{Entry: e, Node: w.Node}) // our entry for a node that moved
			leaving++
		case wanted:
			if !conflicted[e.Dst] {
				p.Conflicts = append(p.Conflicts, Conflict{Want: w, Entry: e})
				conflicted[e.Dst] = true
			}
		case mine:
			p.Deletes = append(p.Deletes, Delete{Entry: e}) // a node that is gone
			leaving++
		}
	}

	retry := in.QuotaRetry
	if retry <= 0 {
		retry = DefaultQuotaRetry
	}
	blocked := in.Block != nil && in.Block.Custom == p.Usage.Custom && in.Now.Sub(in.Block.At) < retry && len(p.Deletes) == 0
	free := -1 // unlimited: quota unknown
	if in.Quota > 0 {
		free = max(in.Quota-(p.Usage.Custom-leaving), 0)
	}
	for _, w := range uniq {
		var st NodeState
		e, ok := held[w.Dst]
		switch {
		case conflicted[w.Dst]:
			st = NodeState{Reason: ReasonConflict}
		case ok && e.Status == routetable.StatusAvailable:
			st = NodeState{Routed: true}
		case ok:
			st = NodeState{Reason: ReasonPending}
		case blocked || free == 0:
			p.Withheld = append(p.Withheld, w)
			st = NodeState{Reason: ReasonQuota}
		default:
			if free > 0 {
				free--
			}
			p.Creates = append(p.Creates, Create{Node: w.Node, Entry: aliyun.NewRouteEntry{TableID: in.ID, Dst: w.Dst,
				NextHopType: "Instance", NextHopID: w.Instance, Description: in.Owner, Name: entryName(w.Dst)}})
			st = NodeState{Reason: ReasonPending}
			if r := in.Failed[w.Dst]; r != "" {
				st = NodeState{Reason: r}
			}
		}
		states = append(states, nodeDst{w.Node, st})
	}
	for _, s := range states {
		foldInto(p.Nodes, s.node, s.st)
	}
	return p
}

type nodeDst struct {
	node string
	st   NodeState
}

func entryName(dst netip.Prefix) string { return "weft-" + strings.ReplaceAll(dst.String(), "/", "-") }

// severity orders the reasons a node is not routed: the one needing a human wins over the transient ones.
var severity = map[string]int{ReasonPending: 1, ReasonThrottle: 2, ReasonAPI: 3, ReasonQuota: 4, ReasonConflict: 5}

// foldInto combines st with what m holds for node (another family, or another table): routed only when every
// part is; otherwise the most severe reason.
func foldInto(m map[string]NodeState, node string, st NodeState) {
	prev, seen := m[node]
	switch {
	case !seen || prev.Routed:
		m[node] = st
	case st.Routed || severity[prev.Reason] >= severity[st.Reason]:
		// prev stands
	default:
		m[node] = st
	}
}
