package alivpc

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/cloud/aliyun"
)

// planFor plans the fake's table for wants, as the controller would.
func planFor(t *testing.T, f *fakeVPC, wants []Want) TablePlan {
	t.Helper()
	es, err := f.RouteEntries(context.Background(), fakeTableID)
	if err != nil {
		t.Fatal(err)
	}
	return PlanTable(TableInput{ID: fakeTableID, Entries: es, Wants: wants, Owner: us, Now: t0})
}

func wantsN(from, to int) []Want {
	var out []Want
	for i := from; i < to; i++ {
		out = append(out, Want{Node: fmt.Sprintf("n%03d", i), Dst: netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.0/24", 10+i/256, i%256)),
			Instance: fmt.Sprintf("i-alisim%04d", i%3+1)})
	}
	return out
}

func reasons(m map[netip.Prefix]string) map[string]int {
	out := map[string]int{}
	for _, r := range m {
		out[r]++
	}
	return out
}

func newExec(f *fakeVPC) *Executor {
	return &Executor{API: f, Poll: time.Millisecond, Timeout: time.Minute}
}

func TestExecutorBatchesAndWritesOnlyToAnIdleTable(t *testing.T) {
	f := newFakeVPC()
	for _, w := range wantsN(200, 260) { // 60 of ours whose nodes are gone
		f.put(fakeTableID, w.Dst.String(), w.Instance, us, "")
	}
	f.put(fakeTableID, "172.30.0.0/16", "i-alisim0003", "someone else", "")
	p := planFor(t, f, wantsN(0, 120))
	if len(p.Creates) != 120 || len(p.Deletes) != 60 {
		t.Fatalf("plan: %d creates, %d deletes", len(p.Creates), len(p.Deletes))
	}
	a, err := newExec(f).Apply(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if a.Created != 120 || a.Deleted != 60 || a.QuotaHit || len(a.Failed) != 0 || len(a.Nodes) != 0 {
		t.Fatalf("applied %+v", a)
	}
	if got := fmt.Sprint(f.batches); got != "map[CreateRouteEntries:[50 50 20] DeleteRouteEntries:[50 10]]" {
		t.Fatalf("batches %s", got)
	}
	for _, w := range f.writes {
		if strings.HasSuffix(w, "busy=true") {
			t.Fatalf("a write went to a busy table: %v", f.writes)
		}
	}
	if busy(a.Entries) || len(a.Entries) == 0 {
		t.Fatalf("Entries is not the idle table: %d entries", len(a.Entries))
	}
	got := f.custom(fakeTableID)
	if len(got) != 121 || !strings.Contains(strings.Join(got, "\n"), "172.30.0.0/16 via i-alisim0003 [someone else] Available") {
		t.Fatalf("table after apply (%d):\n%s", len(got), strings.Join(got, "\n"))
	}
	for _, l := range got {
		if !strings.HasSuffix(l, "Available") {
			t.Fatalf("not settled: %s", l)
		}
	}
}

func TestExecutorQuotaExceededPerEntryStopsCreates(t *testing.T) {
	f := newFakeVPC()
	f.setQuota(fakeTableID, 70)
	a, err := newExec(f).Apply(context.Background(), planFor(t, f, wantsN(0, 120)))
	if err != nil {
		t.Fatal(err)
	}
	// The second batch fills the table; the third is not tried.
	if a.Created != 70 || !a.QuotaHit || fmt.Sprint(reasons(a.Failed)) != "map[RouteTableQuotaExceeded:50]" || len(a.Nodes) != 50 {
		t.Fatalf("applied: created %d, quota hit %v, failed %v, %d nodes", a.Created, a.QuotaHit, reasons(a.Failed), len(a.Nodes))
	}
	if got := fmt.Sprint(f.batches["CreateRouteEntries"]); got != "[50 50]" {
		t.Fatalf("create batches %s", got)
	}
	if st := a.Nodes["n119"]; st.Routed || st.Reason != ReasonQuota {
		t.Fatalf("n119: %+v", st)
	}
}

func TestExecutorQuotaExceededForTheWholeCall(t *testing.T) {
	f := newFakeVPC()
	f.faults["CreateRouteEntries"] = []error{apiError("CreateRouteEntries", 400, "QuotaExceeded")}
	a, err := newExec(f).Apply(context.Background(), planFor(t, f, wantsN(0, 60)))
	if err != nil || !a.QuotaHit || a.Created != 0 || fmt.Sprint(reasons(a.Failed)) != "map[RouteTableQuotaExceeded:60]" {
		t.Fatalf("applied %v %v %v, err %v", a.Created, a.QuotaHit, reasons(a.Failed), err)
	}
}

func TestExecutorPerEntryFailures(t *testing.T) {
	f := newFakeVPC()
	ws := wantsN(0, 5)
	ws[4].Instance = "i-notinthisvpc"
	f.entryFail[ws[0].Dst] = []string{"TaskConflict"}                         // retried once: lands
	f.entryFail[ws[1].Dst] = []string{"Throttling", "Throttling"}             // still refused after the retry
	f.entryFail[ws[2].Dst] = []string{"VPC_ROUTE_ENTRY_CIDR_BLOCK_DUPLICATE"} // made meanwhile: not a failure
	a, err := newExec(f).Apply(context.Background(), planFor(t, f, ws))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for dst, r := range a.Failed {
		got[dst.String()] = r
	}
	want := map[string]string{ws[1].Dst.String(): ReasonThrottle, ws[4].Dst.String(): ReasonAPI}
	if fmt.Sprint(got) != fmt.Sprint(want) || a.Created != 2 || a.QuotaHit {
		t.Fatalf("failed %v (want %v), created %d", got, want, a.Created)
	}
	if st := a.Nodes[ws[4].Node]; st.Reason != ReasonAPI {
		t.Fatalf("node %s: %+v", ws[4].Node, st)
	}
	if got := fmt.Sprint(f.batches["CreateRouteEntries"]); got != "[5 2]" {
		t.Fatalf("create batches %s (the retryable failures go again once)", got)
	}
}

func TestExecutorCallErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		reason string
	}{
		{"retryable after the client's own retries", apiError("CreateRouteEntries", 400, "Throttling.User"), ReasonThrottle},
		{"not retryable", apiError("CreateRouteEntries", 403, "Forbidden.RAM"), ReasonAPI},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeVPC()
			f.put(fakeTableID, "10.99.0.0/24", "i-alisim0001", us, "") // gone node
			f.faults["DeleteRouteEntries"] = []error{apiError("DeleteRouteEntries", 503, "ServiceUnavailable")}
			f.faults["CreateRouteEntries"] = []error{nil, tc.err} // the first batch lands, the second is refused
			a, err := newExec(f).Apply(context.Background(), planFor(t, f, wantsN(0, 70)))
			if aliyun.Code(err) != "ServiceUnavailable" || !errors.Is(err, tc.err) {
				t.Fatalf("error %v: want both the delete's and the create's", err)
			}
			if a.Created != 50 || a.Deleted != 0 || fmt.Sprint(reasons(a.Failed)) != fmt.Sprintf("map[%s:20]", tc.reason) {
				t.Fatalf("created %d deleted %d failed %v", a.Created, a.Deleted, reasons(a.Failed))
			}
		})
	}
}

func TestExecutorDeletesTolerateGoneEntries(t *testing.T) {
	f := newFakeVPC()
	f.put(fakeTableID, "10.99.0.0/24", "i-alisim0001", us, "")
	p := planFor(t, f, nil)
	p.Deletes = append(p.Deletes, Delete{Entry: aliyun.RouteEntry{ID: "rte-gone", TableID: fakeTableID, Dst: netip.MustParsePrefix("10.98.0.0/24")}})
	a, err := newExec(f).Apply(context.Background(), p)
	if err != nil || a.Deleted != 1 || len(f.custom(fakeTableID)) != 0 {
		t.Fatalf("applied %+v, %v; table %v", a, err, f.custom(fakeTableID))
	}
}

func TestExecutorGivesUpOnATableThatStaysBusy(t *testing.T) {
	f := newFakeVPC()
	f.step = 0 // the clock stands still: the Pending entry never settles
	f.put(fakeTableID, "10.99.0.0/24", "i-alisim0001", "", "Pending")
	x := &Executor{API: f, Poll: time.Millisecond, Timeout: 20 * time.Millisecond}
	a, err := x.Apply(context.Background(), planFor(t, f, wantsN(0, 3)))
	if err == nil || !strings.Contains(err.Error(), "still changing after 20ms") {
		t.Fatalf("error %v", err)
	}
	if len(f.writes) != 0 || a.Entries != nil || fmt.Sprint(reasons(a.Failed)) != "map[Throttled:3]" {
		t.Fatalf("writes %v, entries %d, failed %v", f.writes, len(a.Entries), reasons(a.Failed))
	}
}

func TestExecutorWaitEndsWithItsContext(t *testing.T) {
	f := newFakeVPC()
	f.step = 0
	f.put(fakeTableID, "10.99.0.0/24", "i-alisim0001", "", "Pending")
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	f.onList = func(*fakeVPC, string) {
		if calls++; calls == 5 {
			cancel()
		}
	}
	x := &Executor{API: f, Poll: time.Millisecond, Timeout: time.Hour}
	_, err := x.Apply(ctx, planFor(t, f, wantsN(0, 1)))
	if !errors.Is(err, context.Canceled) || len(f.writes) != 0 {
		t.Fatalf("error %v, writes %v", err, f.writes)
	}
}

// A plan without writes makes no call.
func TestExecutorNothingToDo(t *testing.T) {
	f := newFakeVPC()
	before := f.callCount("DescribeRouteEntryList")
	a, err := newExec(f).Apply(context.Background(), TablePlan{Table: fakeTableID})
	if err != nil || a.Created+a.Deleted != 0 || f.callCount("DescribeRouteEntryList") != before {
		t.Fatalf("%+v %v", a, err)
	}
}
