package alivpc

// The executor is the side-effect half of the route controller: it applies one table's plan through RouteAPI.
// A VPC route table takes one change at a time and refuses writes while any entry is Pending or Deleting, so
// every batch (at most aliyun.MaxBatch entries) waits for an idle table first; deletes go before creates (a
// moved node's entry must be gone before its replacement can be made). Call-level refusals that are worth a
// retry (TaskConflict, IncorrectRouteEntryStatus, Throttling, ...) are retried by the cloud client itself; the
// executor handles what the client reports per entry of a batch.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"k8s.io/klog/v2"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/internal/backoff"
)

// Executor applies plans. The zero Poll and Timeout mean 1 s and 2 min.
type Executor struct {
	API     RouteAPI
	Poll    time.Duration // between looks at a busy table
	Timeout time.Duration // how long one wait for an idle table may take before the apply gives up
}

// Applied is what one Apply did.
type Applied struct {
	Created, Deleted int
	// QuotaHit: the service refused a create with QuotaExceeded (the caller stops creating in the table until it
	// changes or QuotaRetry passes).
	QuotaHit bool
	// Failed are the creates that did not land, by destination, with the reason (RouteTableQuotaExceeded,
	// Throttled, CloudAPIError); Nodes is the same by node. A create refused as a duplicate is not a failure:
	// the next look at the table adopts the entry or reports the conflict.
	Failed map[netip.Prefix]string
	Nodes  map[string]NodeState
	// Entries is the table as last seen idle after the writes; nil when that look failed.
	Entries []aliyun.RouteEntry
}

func (a *Applied) fail(c Create, reason string) {
	a.Failed[c.Entry.Dst] = reason
	foldInto(a.Nodes, c.Node, NodeState{Reason: reason})
}

// Apply writes the plan's deletes, then its creates, and waits for the table to settle. It carries on past a
// failed delete batch (the creates may still land) and returns every failure joined.
func (x *Executor) Apply(ctx context.Context, p TablePlan) (Applied, error) {
	a := Applied{Failed: map[netip.Prefix]string{}, Nodes: map[string]NodeState{}}
	if !p.Writes() {
		return a, nil
	}
	var errs []error
	stuck := false // a wait for an idle table failed: waiting once more would only repeat it
	if err := x.deletes(ctx, p.Table, p.Deletes, &a, &stuck); err != nil {
		errs = append(errs, err)
	}
	if err := x.creates(ctx, p.Table, p.Creates, &a, &stuck); err != nil {
		errs = append(errs, err)
	}
	if !stuck && ctx.Err() == nil {
		if es, err := x.idle(ctx, p.Table); err != nil {
			errs = append(errs, err)
		} else {
			a.Entries = append([]aliyun.RouteEntry{}, es...) // non-nil: seen, even if empty
		}
	}
	return a, errors.Join(errs...)
}

func (x *Executor) deletes(ctx context.Context, table string, dels []Delete, a *Applied, stuck *bool) error {
	queue := make([]aliyun.RouteEntry, 0, len(dels))
	for _, d := range dels {
		queue = append(queue, d.Entry)
	}
	retried := map[string]bool{}
	for len(queue) > 0 {
		n := min(len(queue), aliyun.MaxBatch)
		chunk := queue[:n:n]
		queue = queue[n:]
		if _, err := x.idle(ctx, table); err != nil {
			*stuck = true
			return err
		}
		r, err := x.API.DeleteRouteEntries(ctx, chunk)
		a.Deleted += r.Succeeded
		if err != nil {
			return fmt.Errorf("delete %d route entries in %s: %w", len(chunk)+len(queue), table, err)
		}
		for _, f := range r.Failed {
			e, found := entryOf(chunk, f)
			switch {
			case f.Code == "VPC_ROUTER_ENTRY_NOT_EXIST" || f.Code == "InvalidRouteEntry.NotFound":
				klog.V(2).Infof("ali-vpc: delete %s %s in %s: already gone", f.EntryID, f.Dst, table)
			case retryableCode(f.Code) && found && !retried[e.ID]:
				retried[e.ID] = true
				queue = append(queue, e)
			default:
				klog.Warningf("ali-vpc: delete %s %s in %s: %s %s", f.EntryID, f.Dst, table, f.Code, f.Message)
			}
		}
	}
	return nil
}

func (x *Executor) creates(ctx context.Context, table string, creates []Create, a *Applied, stuck *bool) error {
	queue := append([]Create(nil), creates...)
	retried := map[netip.Prefix]bool{}
	full := func(rest []Create) {
		for _, c := range rest {
			a.fail(c, ReasonQuota)
		}
		a.QuotaHit = true
		klog.Errorf("ali-vpc: route table %s is full: %d route(s) left unrouted until an entry is freed or the quota raised", table, len(rest))
	}
	for len(queue) > 0 {
		n := min(len(queue), aliyun.MaxBatch)
		chunk := queue[:n:n]
		queue = queue[n:]
		if _, err := x.idle(ctx, table); err != nil {
			*stuck = true
			for _, c := range append(chunk, queue...) {
				a.fail(c, callReason(err))
			}
			return err
		}
		entries := make([]aliyun.NewRouteEntry, 0, len(chunk))
		byDst := map[netip.Prefix]Create{}
		for _, c := range chunk {
			entries = append(entries, c.Entry)
			byDst[c.Entry.Dst] = c
		}
		r, err := x.API.CreateRouteEntries(ctx, entries)
		a.Created += r.Succeeded
		if aliyun.Code(err) == "QuotaExceeded" {
			full(append(chunk, queue...))
			return nil
		}
		if err != nil {
			for _, c := range append(chunk, queue...) {
				a.fail(c, callReason(err))
			}
			return fmt.Errorf("create %d route entries in %s: %w", len(chunk)+len(queue), table, err)
		}
		var refused []Create
		for _, f := range r.Failed {
			c, ok := byDst[f.Dst]
			if !ok {
				klog.Warningf("ali-vpc: create in %s: failure for %s, which was not asked for: %s %s", table, f.Dst, f.Code, f.Message)
				continue
			}
			switch {
			case f.Code == "QuotaExceeded":
				refused = append(refused, c)
			case f.Code == "VPC_ROUTE_ENTRY_CIDR_BLOCK_DUPLICATE" || f.Code == "InvalidCIDRBlock.Duplicate":
				klog.V(2).Infof("ali-vpc: create %s in %s: already exists", f.Dst, table)
			case retryableCode(f.Code) && !retried[f.Dst]:
				retried[f.Dst] = true
				queue = append(queue, c)
			case retryableCode(f.Code):
				a.fail(c, ReasonThrottle)
				klog.Warningf("ali-vpc: create %s in %s: %s %s", f.Dst, table, f.Code, f.Message)
			default:
				a.fail(c, ReasonAPI)
				klog.Warningf("ali-vpc: create %s in %s: %s %s", f.Dst, table, f.Code, f.Message)
			}
		}
		if len(refused) > 0 {
			full(append(refused, queue...))
			return nil
		}
	}
	return nil
}

// idle waits until no entry of the table is Pending, Modifying or Deleting, and returns its entries.
func (x *Executor) idle(ctx context.Context, table string) ([]aliyun.RouteEntry, error) {
	timeout, poll := x.Timeout, x.Poll
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	if poll <= 0 {
		poll = time.Second
	}
	deadline := time.Now().Add(timeout)
	for {
		es, err := x.API.RouteEntries(ctx, table)
		if err != nil {
			return nil, fmt.Errorf("list route table %s: %w", table, err)
		}
		if !busy(es) {
			return es, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("route table %s still changing after %s: an entry stays Pending, Modifying or Deleting", table, timeout)
		}
		if err := backoff.Sleep(ctx, poll); err != nil {
			return nil, err
		}
	}
}

func busy(es []aliyun.RouteEntry) bool {
	for _, e := range es {
		if !e.Status.Settled() {
			return true
		}
	}
	return false
}

// callReason is a node's reason when the call carrying its entry failed as a whole.
func callReason(err error) string {
	if aliyun.Retryable(err) {
		return ReasonThrottle
	}
	return ReasonAPI
}

// retryableCode reports whether a per-entry failure code is one the client would retry had the whole call
// been refused with it (the client's own list decides).
func retryableCode(code string) bool { return aliyun.Retryable(&aliyun.APIError{Code: code}) }

func entryOf(chunk []aliyun.RouteEntry, f aliyun.EntryFailure) (aliyun.RouteEntry, bool) {
	for _, e := range chunk {
		if (f.EntryID != "" && e.ID == f.EntryID) || (f.EntryID == "" && e.Dst == f.Dst) {
			return e, true
		}
	}
	return aliyun.RouteEntry{}, false
}
