package alivpc

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/weftnet/weft/internal/coordination"
)

// A pass that cannot read the tables (the list, or one table's entries) reports why in ReadErr and marks the
// nodes it could not judge Unknown with CloudAPIError, so the leader keeps their published status; a node a
// readable table shows unrouted keeps its real reason; the next pass that reads everything clears it all.
func TestControllerCloudAPIOutage(t *testing.T) {
	f := newFakeVPC()
	clock := t0
	c := fakeController(f, us, &clock)
	ws := wantsN(0, 2)
	if r, err := c.Reconcile(context.Background(), ws); err != nil || r.ReadErr != nil {
		t.Fatalf("first pass: %+v %v", r, err)
	}
	f.advance(f.pending)
	if r, err := c.Reconcile(context.Background(), ws); err != nil || !r.Nodes[ws[0].Node].Routed || !r.Nodes[ws[1].Node].Routed {
		t.Fatalf("settled: %+v %v", r.Nodes, err)
	}

	down := errors.New("DescribeRouteTableList: stopped waiting for the cloud API: connection refused")
	f.faults["DescribeRouteTableList"] = []error{down}
	r, err := c.Reconcile(context.Background(), ws)
	if !errors.Is(err, down) || !errors.Is(r.ReadErr, down) || !strings.Contains(r.ReadErr.Error(), "list the route tables of vpc-fake0001") {
		t.Fatalf("table list refused: err %v, ReadErr %v", err, r.ReadErr)
	}
	for _, w := range ws {
		if st := r.Nodes[w.Node]; st.Routed || !st.Unknown || st.Reason != ReasonAPI {
			t.Fatalf("table list refused: node %s %+v, want Unknown CloudAPIError", w.Node, st)
		}
	}

	// A second table, unreadable, next to a readable one holding a conflict: the conflict stands, the routed node
	// is Unknown.
	f.addTable("vtb-fake0002", 200)
	f.put(fakeTableID, "10.99.0.0/24", "i-alisim0003", "", "Available")
	ws = append(ws, Want{Node: "n-conflict", Dst: netip.MustParsePrefix("10.99.0.0/24"), Instance: "i-alisim0001"})
	// Tables are read in order: vtb-fake0001 answers, vtb-fake0002 does not.
	f.faults["DescribeRouteEntryList"] = []error{nil, errors.New("DescribeRouteEntryList: the answer is not the API's: HTTP 200 (text/html)")}
	r, err = c.Reconcile(context.Background(), ws)
	if err == nil || r.ReadErr == nil || !strings.Contains(r.ReadErr.Error(), "list route table vtb-fake0002") {
		t.Fatalf("one table unreadable: err %v, ReadErr %v", err, r.ReadErr)
	}
	if st := r.Nodes["n-conflict"]; st.Unknown || st.Reason != ReasonConflict {
		t.Fatalf("conflict in the readable table: %+v", st)
	}
	if st := r.Nodes[ws[0].Node]; !st.Unknown || st.Reason != ReasonAPI {
		t.Fatalf("routed in the readable table, unread in the other: %+v", st)
	}

	// Back: every table read, no Unknown, no ReadErr.
	for i := 0; i < 3; i++ {
		r, _ = c.Reconcile(context.Background(), ws)
		f.advance(f.pending)
	}
	if r.ReadErr != nil || r.Nodes[ws[0].Node].Unknown || !r.Nodes[ws[0].Node].Routed {
		t.Fatalf("back: %+v %v", r.Nodes, r.ReadErr)
	}
}

// The leader reports a pass that could not read the tables in its own readiness (CloudAPIError and the cause)
// even though its own route is fine, until a pass reads them again.
func TestLeaderReadinessReportsTheCloudAPIError(t *testing.T) {
	n := &Network{status: coordination.Status{Routed: true}, known: true}
	if ok, why := n.Ready(); !ok {
		t.Fatalf("routed: not ready: %s", why)
	}
	n.setCloudErr(errors.New("list the route tables of vpc-1: DescribeRouteTableList: connection refused"))
	ok, why := n.Ready()
	if ok || !strings.HasPrefix(why, "CloudAPIError: ") || !strings.Contains(why, "DescribeRouteTableList: connection refused") {
		t.Fatalf("outage: ready %v %q", ok, why)
	}
	n.setCloudErr(nil)
	if ok, why := n.Ready(); !ok {
		t.Fatalf("back: not ready: %s", why)
	}
}
