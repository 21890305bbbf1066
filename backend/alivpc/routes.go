package alivpc

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
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

// Want is one desired route: a node's pod subnet via its instance.
type Want struct {
	Node     string // lease key, for reports
	Dst      netip.Prefix
	Instance string
}

// NodeState is what the controller knows of one node's route.
type NodeState struct {
	Routed bool
	Reason string // when not routed: Pending, RouteTableQuotaExceeded, Throttled, RouteConflict, APIError
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
// owns the entries whose Description is its owner tag and never touches others.
type Controller struct {
	API     RouteAPI
	VPC     string
	Tables  []string // explicit route tables; empty: every table of the VPC
	Owner   string   // Description marking weft's entries, e.g. "weft:<cluster>"
	Poll    time.Duration
	Timeout time.Duration // how long a table may stay busy before the pass gives up (default 2 min)
	// QuotaRetry is how long a full table is left alone before one more create is tried, in case the quota was
	// raised (default 5 min); any change to the table's entries retries at once.
	QuotaRetry time.Duration

	quotaBlocked map[string]block // table -> when and at which entry count QuotaExceeded stopped writes
}

type block struct {
	count int
	at    time.Time
}

// Table is a route table's observed state.
type Table struct {
	ID      string
	Entries []aliyun.RouteEntry
	Quota   int // from the API if it answers (not exposed by the VPC API here), else configuration
}

// Result is one pass's outcome.
type Result struct {
	Nodes   map[string]NodeState // by Want.Node
	Tables  []TableUsage
	Created int
	Deleted int
}

// TableUsage feeds the quota metrics.
type TableUsage struct {
	ID                  string
	Used, Owned, Custom int
}

// Reconcile makes the tables hold exactly one entry per want (in the first table, or where it already is), and
// none of the owner's entries that are not wanted. Writes go in batches, one change per table at a time, waiting
// until the table settles (no Pending/Deleting entries) before the next write.
func (c *Controller) Reconcile(ctx context.Context, wants []Want) (Result, error) {
	res := Result{Nodes: map[string]NodeState{}}
	if c.quotaBlocked == nil {
		c.quotaBlocked = map[string]block{}
	}
	tables, err := c.tables(ctx)
	if err != nil {
		return res, err
	}
	if len(tables) == 0 {
		return res, fmt.Errorf("VPC %s has no route table", c.VPC)
	}
	var errs []error
	wantByDst := map[netip.Prefix]Want{}
	for _, w := range wants {
		wantByDst[w.Dst] = w
		res.Nodes[w.Node] = NodeState{Reason: ReasonPending}
	}
	// Every table gets every route: nodes in any vSwitch must be reachable whichever table serves the sender.
	for _, tid := range tables {
		t, err := c.observe(ctx, tid)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var create []aliyun.NewRouteEntry
		var del []aliyun.RouteEntry
		have := map[netip.Prefix]aliyun.RouteEntry{}
		for _, e := range t.Entries {
			if e.Type != "Custom" {
				continue
			}
			w, wanted := wantByDst[e.Dst]
			mine := e.Description == c.Owner
			switch {
			case wanted && e.NextHopID == w.Instance:
				have[e.Dst] = e // ours, or a foreign entry pointing at the right instance: adopted as is
			case wanted && mine:
				del = append(del, e) // our entry for a node that moved to another instance
			case wanted:
				res.Nodes[w.Node] = NodeState{Reason: ReasonConflict}
				klog.Warningf("ali-vpc: route %s in %s points at %s (not weft's); node %s wants %s", e.Dst, tid, e.NextHopID, w.Node, w.Instance)
				have[e.Dst] = e // block creating a duplicate
			case mine:
				del = append(del, e) // a node that is gone
			}
		}
		for _, w := range wants {
			e, ok := have[w.Dst]
			switch {
			case !ok:
				create = append(create, aliyun.NewRouteEntry{TableID: tid, Dst: w.Dst, NextHopType: "Instance", NextHopID: w.Instance,
					Description: c.Owner, Name: "weft-" + strings.ReplaceAll(w.Dst.String(), "/", "-")})
			case e.NextHopID == w.Instance && e.Status == "Available":
				if st := res.Nodes[w.Node]; st.Reason != ReasonConflict {
					res.Nodes[w.Node] = NodeState{Routed: true}
				}
			}
		}
		if len(del) > 0 {
			n, err := c.write(ctx, tid, func() (aliyun.BatchResult, error) { return c.API.DeleteRouteEntries(ctx, del) })
			res.Deleted += n
			if err != nil {
				errs = append(errs, err)
			}
			delete(c.quotaBlocked, tid) // room may have been made
		}
		if len(create) > 0 {
			created, quotaHit, err := c.create(ctx, tid, create, len(t.Entries))
			res.Created += created
			if err != nil {
				errs = append(errs, err)
				reason := ReasonAPI
				if aliyun.Retryable(err) {
					reason = ReasonThrottle
				}
				for _, e := range create {
					if st := res.Nodes[wantByDst[e.Dst].Node]; !st.Routed && st.Reason == ReasonPending {
						res.Nodes[wantByDst[e.Dst].Node] = NodeState{Reason: reason}
					}
				}
			}
			for _, dst := range quotaHit {
				res.Nodes[wantByDst[dst].Node] = NodeState{Reason: ReasonQuota}
			}
		}
		// Usage after the writes, for the quota metrics.
		if t2, err := c.observe(ctx, tid); err == nil {
			u := TableUsage{ID: tid}
			for _, e := range t2.Entries {
				if e.Type == "Custom" {
					u.Custom++
					if e.Description == c.Owner {
						u.Owned++
					}
					if w, ok := wantByDst[e.Dst]; ok && e.NextHopID == w.Instance && e.Status == "Available" {
						if st := res.Nodes[w.Node]; st.Reason != ReasonConflict && st.Reason != ReasonQuota {
							res.Nodes[w.Node] = NodeState{Routed: true}
						}
					}
				}
			}
			u.Used = u.Custom
			res.Tables = append(res.Tables, u)
		}
	}
	return res, errors.Join(errs...)
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

func (c *Controller) observe(ctx context.Context, tid string) (Table, error) {
	es, err := c.API.RouteEntries(ctx, tid)
	if err != nil {
		return Table{}, fmt.Errorf("list route table %s: %w", tid, err)
	}
	return Table{ID: tid, Entries: es}, nil
}

// settle waits until no entry of the table is Pending, Modifying or Deleting.
func (c *Controller) settle(ctx context.Context, tid string) error {
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	poll := c.Poll
	if poll == 0 {
		poll = time.Second
	}
	deadline := time.Now().Add(timeout)
	for {
		t, err := c.observe(ctx, tid)
		if err != nil {
			return err
		}
		busy := false
		for _, e := range t.Entries {
			if e.Status == "Pending" || e.Status == "Modifying" || e.Status == "Deleting" {
				busy = true
			}
		}
		if !busy {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("route table %s still changing after %s", tid, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

// write waits for the table to settle, runs one batch call, and waits again so the change is complete.
func (c *Controller) write(ctx context.Context, tid string, call func() (aliyun.BatchResult, error)) (int, error) {
	if err := c.settle(ctx, tid); err != nil {
		return 0, err
	}
	r, err := call()
	if err != nil {
		return r.Succeeded, err
	}
	for _, f := range r.Failed {
		klog.Warningf("ali-vpc: %s %s in %s: %s %s", f.EntryID, f.Dst, tid, f.Code, f.Message)
	}
	return r.Succeeded, c.settle(ctx, tid)
}

// create writes entries in batches; entries refused with QuotaExceeded are returned, and further creates in the
// table stop until its content changes (no retry storm against a full table).
func (c *Controller) create(ctx context.Context, tid string, entries []aliyun.NewRouteEntry, count int) (int, []netip.Prefix, error) {
	retry := c.QuotaRetry
	if retry == 0 {
		retry = 5 * time.Minute
	}
	if b, blocked := c.quotaBlocked[tid]; blocked && b.count == count && time.Since(b.at) < retry {
		var all []netip.Prefix
		for _, e := range entries {
			all = append(all, e.Dst)
		}
		return 0, all, nil
	}
	delete(c.quotaBlocked, tid)
	created := 0
	var quota []netip.Prefix
	for len(entries) > 0 {
		n := min(len(entries), aliyun.MaxBatch)
		chunk := entries[:n]
		entries = entries[n:]
		if err := c.settle(ctx, tid); err != nil {
			return created, quota, err
		}
		r, err := c.API.CreateRouteEntries(ctx, chunk)
		created += r.Succeeded
		if aliyun.Code(err) == "QuotaExceeded" {
			for _, e := range append(chunk, entries...) {
				quota = append(quota, e.Dst)
			}
			c.quotaBlocked[tid] = block{count + created, time.Now()}
			return created, quota, c.settle(ctx, tid)
		}
		if err != nil {
			return created, quota, err
		}
		for _, f := range r.Failed {
			switch f.Code {
			case "QuotaExceeded":
				quota = append(quota, f.Dst)
			default:
				klog.Warningf("ali-vpc: create %s in %s: %s %s", f.Dst, tid, f.Code, f.Message)
			}
		}
		if len(quota) > 0 {
			for _, e := range entries {
				quota = append(quota, e.Dst)
			}
			c.quotaBlocked[tid] = block{count + created, time.Now()}
			klog.Errorf("ali-vpc: route table %s is full: %d node(s) left unrouted until an entry is freed or the quota raised", tid, len(quota))
			return created, quota, c.settle(ctx, tid)
		}
	}
	return created, quota, c.settle(ctx, tid)
}
