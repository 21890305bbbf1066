package alivpc

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"time"

	"k8s.io/klog/v2"

	"github.com/weftnet/weft/cloud/aliyun"
)

// RouteAPI is what the route controller needs from the cloud (*aliyun.Client implements it).
type RouteAPI interface {
	RouteTables(ctx context.Context, vpcID string) ([]aliyun.RouteTable, error)
	RouteEntries(ctx context.Context, tableID string) ([]aliyun.RouteEntry, error)
	CreateRouteEntries(ctx context.Context, entries []aliyun.NewRouteEntry) (aliyun.BatchResult, error)
	DeleteRouteEntries(ctx context.Context, entries []aliyun.RouteEntry) (aliyun.BatchResult, error)
}

// Want is one desired route: a node's pod subnet via its instance. A dual-stack node has one Want per family.
type Want struct {
	Node     string // the node's identity (opaque), for reports
	Dst      netip.Prefix
	Instance string
}

// NodeState is what the controller knows of one node's route.
type NodeState struct {
	Routed bool
	Reason string // when not routed: Pending, RouteTableQuotaExceeded, Throttled, RouteConflict, APIError
	// Unknown: a table the node's route belongs in could not be read (Reason is CloudAPIError). Its entries may
	// well be in place and carrying traffic, so a status published before stands; only a node without one is
	// told CloudAPIError.
	Unknown bool
}

// Reasons a node is not routed.
const (
	ReasonPending  = "RoutePending"
	ReasonQuota    = "RouteTableQuotaExceeded"
	ReasonThrottle = "Throttled"
	ReasonConflict = "RouteConflict"
	ReasonAPI      = "CloudAPIError"
)

// Controller reconciles the VPC route tables against the desired routes. Only the elected leader runs it. It
// owns the entries whose Description is its owner tag and never touches others. Each pass reads a table, plans
// it (PlanTable, pure), applies the plan (Executor) and plans the table as it then is for the report.
type Controller struct {
	API     RouteAPI
	VPC     string
	Tables  []string // explicit route tables; empty: every table of the VPC
	Owner   string   // Description marking weft's entries, e.g. "weft:<cluster>"
	Poll    time.Duration
	Timeout time.Duration // how long a table may stay busy before the pass gives up (default 2 min)
	// QuotaRetry is how long a full table is left alone before one more create is tried, in case the quota was
	// raised (default DefaultQuotaRetry, 1 min); any change to the table's entries retries at once.
	QuotaRetry time.Duration
	// Quota, when set, gives a table's custom-entry quota as the cloud reports it (0: unknown); creates beyond
	// the free room are then not tried. Without it the service's QuotaExceeded decides.
	Quota func(tableID string) int

	now          func() time.Time      // the clock (tests); nil: time.Now
	quotaBlocked map[string]QuotaBlock // table -> when and at which entry count QuotaExceeded stopped writes
}

// Result is one pass's outcome.
type Result struct {
	Nodes map[string]NodeState // by Want.Node
	// ReadErr is why the tables (the list of them, or one table's entries) could not be read; nil when every
	// table was. The leader reports it (CloudAPIError) until a pass reads them all again.
	ReadErr error
	Tables  []TableUsage
	Created int
	Deleted int
}

// Reconcile makes the tables hold exactly one entry per want (in every table), and none of the owner's entries
// that are not wanted. A node is routed when its entries (every family, every table) are Available.
func (c *Controller) Reconcile(ctx context.Context, wants []Want) (Result, error) {
	res := Result{Nodes: map[string]NodeState{}}
	if c.quotaBlocked == nil {
		c.quotaBlocked = map[string]QuotaBlock{}
	}
	tables, err := c.tables(ctx)
	if err != nil {
		res.ReadErr = fmt.Errorf("list the route tables of %s: %w", c.VPC, err)
		unknown(res.Nodes, wants)
		return res, res.ReadErr
	}
	if len(tables) == 0 {
		return res, fmt.Errorf("VPC %s has no route table", c.VPC)
	}
	var errs, readErrs []error
	exec := &Executor{API: c.API, Poll: c.Poll, Timeout: c.Timeout}
	// Every table gets every route: nodes in any vSwitch must be reachable whichever table serves the sender.
	for _, tid := range tables {
		entries, err := c.API.RouteEntries(ctx, tid)
		if err != nil {
			readErrs = append(readErrs, fmt.Errorf("list route table %s: %w", tid, err))
			continue
		}
		p := PlanTable(c.input(tid, entries, wants, nil))
		for _, cf := range p.Conflicts {
			if cf.Entry.ID == "" {
				klog.Warningf("ali-vpc: route %s is wanted by two nodes; node %s (via %s) is not routed", cf.Want.Dst, cf.Want.Node, cf.Want.Instance)
			} else {
				klog.Warningf("ali-vpc: route %s in %s points at %s (not weft's); node %s wants %s", cf.Entry.Dst, tid, cf.Entry.NextHopID, cf.Want.Node, cf.Want.Instance)
			}
		}
		final, seen := p, true
		if p.Writes() {
			a, err := exec.Apply(ctx, p)
			res.Created += a.Created
			res.Deleted += a.Deleted
			if err != nil {
				errs = append(errs, err)
			}
			after := a.Entries
			if after == nil {
				if es, err := c.API.RouteEntries(ctx, tid); err == nil {
					after = append([]aliyun.RouteEntry{}, es...) // non-nil: seen, even if empty
				}
			}
			seen = after != nil
			if a.QuotaHit {
				count := p.Usage.Custom + a.Created
				if seen {
					count = CountUsage(tid, after, c.Owner).Custom
				}
				c.quotaBlocked[tid] = QuotaBlock{Custom: count, At: c.clock()}
			}
			if seen {
				final = PlanTable(c.input(tid, after, wants, a.Failed))
			} else {
				final = PlanTable(c.input(tid, entries, wants, a.Failed))
			}
		}
		for node, st := range final.Nodes {
			foldInto(res.Nodes, node, st)
		}
		if seen {
			res.Tables = append(res.Tables, final.Usage)
		}
	}
	if len(readErrs) > 0 {
		res.ReadErr = errors.Join(readErrs...)
		unknown(res.Nodes, wants)
	}
	return res, errors.Join(append(readErrs, errs...)...)
}

// unknown marks the wanted nodes that no table showed unrouted as Unknown: a table went unread, so a route seen
// Available elsewhere (or not seen at all) may be missing from it, or may be there.
func unknown(nodes map[string]NodeState, wants []Want) {
	for _, w := range wants {
		if st, ok := nodes[w.Node]; !ok || st.Routed {
			nodes[w.Node] = NodeState{Reason: ReasonAPI, Unknown: true}
		}
	}
}

func (c *Controller) input(tid string, entries []aliyun.RouteEntry, wants []Want, failed map[netip.Prefix]string) TableInput {
	in := TableInput{ID: tid, Entries: entries, Wants: wants, Owner: c.Owner, QuotaRetry: c.QuotaRetry, Now: c.clock(), Failed: failed}
	if b, ok := c.quotaBlocked[tid]; ok {
		in.Block = &b
	}
	if c.Quota != nil {
		in.Quota = c.Quota(tid)
	}
	return in
}

func (c *Controller) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

func (c *Controller) tables(ctx context.Context) ([]string, error) {
	if len(c.Tables) > 0 {
		return c.Tables, nil
	}
	ts, err := c.API.RouteTables(ctx, c.VPC)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range ts {
		out = append(out, t.ID)
	}
	sort.Strings(out)
	return out, nil
}
