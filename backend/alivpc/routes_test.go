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
