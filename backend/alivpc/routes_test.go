package alivpc

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/cloud/aliyun/sim"
)

const table = "vtb-alisim0001"

type env struct {
	world *sim.World
	srv   *sim.Server
	api   *aliyun.Client
	c     *Controller
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st := sim.DefaultState()
	w := sim.NewWorld(st, nil, "")
	w.SetTiming(sim.Timing{EntryPending: 30 * time.Millisecond, EntryDeleting: 30 * time.Millisecond})
	srv := sim.NewServer(w)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	api, err := aliyun.NewClient(aliyun.Config{Region: "cn-hangzhou", VPCEndpoint: strings.TrimPrefix(hs.URL, "http://"), Scheme: "HTTP",
		Credentials: aliyun.Static{AccessKeyID: sim.DefaultAccessKeyID, AccessKeySecret: sim.DefaultAccessKeySecret},
		BackoffBase: 5 * time.Millisecond, BackoffCap: 20 * time.Millisecond, RatePerSecond: 1000, Attempts: 8})
	if err != nil {
		t.Fatal(err)
	}
	return &env{world: w, srv: srv, api: api, c: &Controller{API: api, VPC: "vpc-alisim0001", Owner: "weft:test", Poll: 10 * time.Millisecond,
		QuotaRetry: time.Hour}}
}

func wants(n int) []Want {
	var out []Want
	for i := 1; i <= n; i++ {
		out = append(out, Want{Node: fmt.Sprintf("node%d", i), Dst: netip.MustParsePrefix(fmt.Sprintf("10.244.%d.0/24", i)),
			Instance: fmt.Sprintf("i-alisim%04d", (i-1)%3+1)})
	}
	return out
}

// custom renders the table's custom entries as "dst via instance [owner]".
func (e *env) custom(t *testing.T) []string {
	t.Helper()
	es, err := e.api.RouteEntries(context.Background(), table)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, x := range es {
		if x.Type == "Custom" {
			out = append(out, fmt.Sprintf("%s via %s %s %s", x.Dst, x.NextHopID, x.Description, x.Status))
		}
	}
	return out
}

func routed(r Result) (int, map[string]string) {
	n := 0
	reasons := map[string]string{}
	for node, st := range r.Nodes {
		if st.Routed {
			n++
		} else {
			reasons[node] = st.Reason
		}
	}
	return n, reasons
}

func TestReconcileCreatesDeletesAndLeavesForeignAlone(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// A foreign entry (not weft's) must survive every pass.
	if _, err := e.api.CreateRouteEntry(ctx, aliyun.NewRouteEntry{TableID: table, Dst: netip.MustParsePrefix("172.30.0.0/16"),
		NextHopID: "i-alisim0003", Description: "someone else"}); err != nil {
		t.Fatal(err)
	}
	r, err := e.c.Reconcile(ctx, wants(3))
	if err != nil {
		t.Fatal(err)
	}
	if n, why := routed(r); n != 3 || r.Created != 3 {
		t.Fatalf("routed %d (%v), created %d", n, why, r.Created)
	}
	// Idempotent: a second pass changes nothing.
	r, err = e.c.Reconcile(ctx, wants(3))
	if err != nil || r.Created != 0 || r.Deleted != 0 {
		t.Fatalf("second pass: %+v %v", r, err)
	}
	// Node 3 is gone (also after a restart of every weftd: the controller keeps nothing in memory).
	fresh := &Controller{API: e.api, VPC: "vpc-alisim0001", Owner: "weft:test", Poll: 10 * time.Millisecond}
	r, err = fresh.Reconcile(ctx, wants(2))
	if err != nil || r.Deleted != 1 {
		t.Fatalf("gc: %+v %v", r, err)
	}
	got := strings.Join(e.custom(t), "\n")
	if strings.Contains(got, "10.244.3.0/24") || !strings.Contains(got, "172.30.0.0/16 via i-alisim0003 someone else") {
		t.Fatalf("after gc:\n%s", got)
	}
	if len(r.Tables) != 1 || r.Tables[0].Owned != 2 || r.Tables[0].Custom != 3 {
		t.Fatalf("usage %+v", r.Tables)
	}
}

func TestQuotaConflictAndAdoption(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// A hand-made entry for node1 pointing at the right instance is adopted; one for node2 pointing elsewhere
	// is a conflict and is not touched.
	for dst, hop := range map[string]string{"10.244.1.0/24": "i-alisim0001", "10.244.2.0/24": "i-alisim0003"} {
		if _, err := e.api.CreateRouteEntry(ctx, aliyun.NewRouteEntry{TableID: table, Dst: netip.MustParsePrefix(dst), NextHopID: hop}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := e.world.SetQuota(table, 3); err != nil {
		t.Fatal(err)
	}
	r, err := e.c.Reconcile(ctx, wants(4))
	if err != nil {
		t.Fatal(err)
	}
	n, why := routed(r)
	if n != 2 || why["node2"] != ReasonConflict || why["node4"] != ReasonQuota || r.Created != 1 {
		t.Fatalf("routed %d, reasons %v, created %d", n, why, r.Created)
	}
	// The full table is not hammered: the next pass makes no create call.
	before := e.calls("CreateRouteEntries")
	if _, err := e.c.Reconcile(ctx, wants(4)); err != nil {
		t.Fatal(err)
	}
	if e.calls("CreateRouteEntries") != before {
		t.Fatal("create retried against a full table")
	}
	// Raising the quota and freeing the conflicting entry converges (a changed table retries at once).
	_ = e.world.SetQuota(table, 10)
	es, _ := e.api.RouteEntries(ctx, table)
	for _, x := range es {
		if x.Dst.String() == "10.244.2.0/24" {
			if _, err := e.api.DeleteRouteEntries(ctx, []aliyun.RouteEntry{x}); err != nil {
				t.Fatal(err)
			}
		}
	}
	time.Sleep(50 * time.Millisecond)
	r, err = e.c.Reconcile(ctx, wants(4))
	if n, why := routed(r); err != nil || n != 4 {
		t.Fatalf("after raising the quota: %d %v %v", n, why, err)
	}
}

func TestConvergesUnderInjectedErrors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, a := range []string{"CreateRouteEntries", "DeleteRouteEntries", "DescribeRouteEntryList"} {
		e.srv.SetFault(a, sim.Fault{Errors: map[string]float64{"Throttling": 0.1, "InternalError": 0.1}})
	}
	if err := e.world.SetQuota(table, 100); err != nil {
		t.Fatal(err)
	}
	var last Result
	var err error
	for pass := 0; pass < 20; pass++ {
		if last, err = e.c.Reconcile(ctx, wants(60)); err == nil {
			if n, _ := routed(last); n == 60 {
				break
			}
		}
	}
	if n, why := routed(last); n != 60 {
		t.Fatalf("not converged: %d routed, %v, last error %v", n, why, err)
	}
	seen := map[string]bool{}
	for _, line := range e.custom(t) {
		dst := strings.Fields(line)[0]
		if seen[dst] {
			t.Fatalf("duplicate entry for %s", dst)
		}
		seen[dst] = true
	}
}

func (e *env) calls(action string) int {
	return e.srv.Calls(action)
}

// fakeController is a Controller over the in-memory fake with its own clock (advanced by the test).
func fakeController(f *fakeVPC, owner string, clock *time.Time) *Controller {
	return &Controller{API: f, VPC: "vpc-fake0001", Owner: owner, Poll: time.Millisecond, now: func() time.Time { return *clock }}
}

// QuotaRetry left zero is the documented one minute (README, Config.QuotaRetry), not five.
func TestControllerQuotaRetryDefaultsToOneMinute(t *testing.T) {
	f := newFakeVPC()
	f.setQuota(fakeTableID, 1)
	clock := t0
	c := fakeController(f, us, &clock)
	ws := wantsN(0, 2)
	r, err := c.Reconcile(context.Background(), ws)
	if err != nil || r.Created != 1 || r.Nodes[ws[1].Node].Reason != ReasonQuota {
		t.Fatalf("first pass: %+v %v", r, err)
	}
	creates := f.callCount("CreateRouteEntries")
	clock = t0.Add(59 * time.Second)
	if r, _ := c.Reconcile(context.Background(), ws); f.callCount("CreateRouteEntries") != creates || r.Nodes[ws[1].Node].Reason != ReasonQuota {
		t.Fatalf("create tried against the full table within the minute (%+v)", r.Nodes)
	}
	clock = t0.Add(61 * time.Second)
	if r, _ := c.Reconcile(context.Background(), ws); f.callCount("CreateRouteEntries") != creates+1 || r.Nodes[ws[1].Node].Reason != ReasonQuota {
		t.Fatalf("no create tried after the minute (%+v)", r.Nodes)
	}
}

// Two weft clusters share one table: each creates, adopts and deletes only under its own tag, and reports the
// other's entries as another weft cluster's.
func TestControllerTwoClustersShareATable(t *testing.T) {
	f := newFakeVPC()
	clock := t0
	a, b := fakeController(f, "weft:a", &clock), fakeController(f, "weft:b", &clock)
	ctx := context.Background()
	wa, wb := wantsN(0, 3), wantsN(10, 12)
	wb = append(wb, Want{Node: "b-x", Dst: wa[0].Dst, Instance: "i-alisim0003"}) // b claims a's subnet elsewhere
	if r, err := a.Reconcile(ctx, wa); err != nil || r.Created != 3 {
		t.Fatalf("a: %+v %v", r, err)
	}
	rb, err := b.Reconcile(ctx, wb)
	if err != nil || rb.Created != 2 || rb.Nodes["b-x"].Reason != ReasonConflict {
		t.Fatalf("b: %+v %v", rb, err)
	}
	if u := rb.Tables[0]; u.Owned != 2 || u.OtherWeft != 3 || u.Foreign() != 0 {
		t.Fatalf("b's usage %+v", u)
	}
	// a's nodes all go: a deletes its three, b's stay.
	ra, err := a.Reconcile(ctx, nil)
	if err != nil || ra.Deleted != 3 {
		t.Fatalf("a gc: %+v %v", ra, err)
	}
	if u := ra.Tables[0]; u.Owned != 0 || u.OtherWeft != 2 {
		t.Fatalf("a's usage %+v", u)
	}
	got := strings.Join(f.custom(fakeTableID), "\n")
	if strings.Contains(got, "[weft:a]") || strings.Count(got, "[weft:b] Available") != 2 {
		t.Fatalf("table:\n%s", got)
	}
	// With a's entry gone, b's conflicting want is routed on b's next pass.
	if rb, err := b.Reconcile(ctx, wb); err != nil || !rb.Nodes["b-x"].Routed {
		t.Fatalf("b after a left: %+v %v", rb, err)
	}
}

// Dual stack: one entry per family and node; a node is routed only when both are, in every table.
func TestControllerDualStackAndSeveralTables(t *testing.T) {
	f := newFakeVPC()
	f.addTable("vtb-fake0000", 3) // room for one node's two families and one more; listed first
	clock := t0
	c := fakeController(f, us, &clock)
	var ws []Want
	for i, node := range []string{"n1", "n2"} {
		ws = append(ws, Want{Node: node, Dst: netip.MustParsePrefix(fmt.Sprintf("10.244.%d.0/24", i+1)), Instance: "i-alisim0001"},
			Want{Node: node, Dst: netip.MustParsePrefix(fmt.Sprintf("fd00:244:0:%d::/64", i+1)), Instance: "i-alisim0001"})
	}
	r, err := c.Reconcile(context.Background(), ws)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Nodes["n1"].Routed || r.Nodes["n2"].Reason != ReasonQuota || r.Created != 7 {
		t.Fatalf("nodes %+v, created %d", r.Nodes, r.Created)
	}
	if n := len(f.custom(fakeTableID)); n != 4 {
		t.Fatalf("%d entries in the first table, want 2 nodes x 2 families", n)
	}
	f.setQuota("vtb-fake0000", 4)
	clock = clock.Add(time.Hour)
	if r, err := c.Reconcile(context.Background(), ws); err != nil || !r.Nodes["n2"].Routed || len(r.Tables) != 2 {
		t.Fatalf("after raising the quota: %+v %v", r, err)
	}
}

// A failed delete does not hide what the pass achieved otherwise: the creates land, the nodes are reported
// routed and the table's usage is counted, with the error returned.
func TestControllerReportsThePassDespiteAFailedBatch(t *testing.T) {
	f := newFakeVPC()
	f.put(fakeTableID, "10.99.0.0/24", "i-alisim0001", us, "") // a gone node's entry
	f.faults["DeleteRouteEntries"] = []error{apiError("DeleteRouteEntries", 503, "ServiceUnavailable")}
	clock := t0
	ws := wantsN(0, 2)
	r, err := fakeController(f, us, &clock).Reconcile(context.Background(), ws)
	if aliyun.Code(err) != "ServiceUnavailable" {
		t.Fatalf("error %v", err)
	}
	if n, why := routed(r); n != 2 || r.Created != 2 || len(r.Tables) != 1 || r.Tables[0].Owned != 3 {
		t.Fatalf("routed %d (%v), created %d, usage %+v", n, why, r.Created, r.Tables)
	}
}
