// Package aliyuntest holds the route-table contract suite: the behaviour of the VPC route API that weft relies
// on, checked against alisim through the real SDK (cloud/aliyun) and against any in-memory fake a backend uses,
// so a fake cannot drift from the emulator, and the emulator is held to the documented service.
package aliyuntest

import (
	"context"
	"net/netip"
	"sort"
	"testing"
	"time"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/cloud/routetable"
)

// RouteAPI is the route-table surface under contract (*aliyun.Client implements it).
type RouteAPI interface {
	RouteEntries(ctx context.Context, tableID string) ([]aliyun.RouteEntry, error)
	CreateRouteEntries(ctx context.Context, entries []aliyun.NewRouteEntry) (aliyun.BatchResult, error)
	DeleteRouteEntries(ctx context.Context, entries []aliyun.RouteEntry) (aliyun.BatchResult, error)
}

// Env is one fresh world: a table with room, two running instances in its VPC, and controls. The table must
// take one change at a time with EntryPending/EntryDeleting transitions, and no write gap.
type Env struct {
	API           RouteAPI
	Table         string
	Hop1, Hop2    string
	Pending       time.Duration // how long entries stay Pending / Deleting
	Advance       func(time.Duration)
	SetQuota      func(int)
	VSwitchSubnet netip.Prefix // a vSwitch CIDR of the VPC
}

// RunRouteContract runs the suite; newEnv builds a fresh world per subtest.
func RunRouteContract(t *testing.T, newEnv func(t *testing.T) Env) {
	ctx := context.Background()
	custom := func(t *testing.T, e Env) map[string]string {
		t.Helper()
		es, err := e.API.RouteEntries(ctx, e.Table)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, x := range es {
			if x.Type == routetable.EntryCustom {
				out[x.Dst.String()+" "+x.NextHopID] = string(x.Status)
			}
		}
		return out
	}
	ne := func(e Env, dst, hop string) aliyun.NewRouteEntry {
		return aliyun.NewRouteEntry{TableID: e.Table, Dst: netip.MustParsePrefix(dst), NextHopID: hop}
	}
	codes := func(r aliyun.BatchResult) []string {
		var out []string
		for _, f := range r.Failed {
			out = append(out, f.Dst.String()+"="+f.Code)
		}
		sort.Strings(out)
		return out
	}

	t.Run("entries go Pending then Available, then Deleting then gone", func(t *testing.T) {
		e := newEnv(t)
		r, err := e.API.CreateRouteEntries(ctx, []aliyun.NewRouteEntry{ne(e, "10.244.1.0/24", e.Hop1), ne(e, "10.244.2.0/24", e.Hop2)})
		if err != nil || r.Succeeded != 2 || len(r.EntryIDs) != 2 || len(r.Failed) != 0 {
			t.Fatalf("create: %+v %v", r, err)
		}
		got := custom(t, e)
		if got["10.244.1.0/24 "+e.Hop1] != "Pending" || got["10.244.2.0/24 "+e.Hop2] != "Pending" {
			t.Fatalf("after create: %v", got)
		}
		e.Advance(e.Pending)
		if got := custom(t, e); got["10.244.1.0/24 "+e.Hop1] != "Available" {
			t.Fatalf("after %s: %v", e.Pending, got)
		}
		es, _ := e.API.RouteEntries(ctx, e.Table)
		var del []aliyun.RouteEntry
		for _, x := range es {
			if x.Dst.String() == "10.244.1.0/24" {
				del = append(del, x)
			}
		}
		if r, err := e.API.DeleteRouteEntries(ctx, del); err != nil || r.Succeeded != 1 {
			t.Fatalf("delete: %+v %v", r, err)
		}
		if got := custom(t, e); got["10.244.1.0/24 "+e.Hop1] != "Deleting" {
			t.Fatalf("after delete: %v", got)
		}
		e.Advance(e.Pending)
		if got := custom(t, e); len(got) != 1 {
			t.Fatalf("after deletion completed: %v", got)
		}
	})

	t.Run("a table in transition refuses writes", func(t *testing.T) {
		e := newEnv(t)
		if _, err := e.API.CreateRouteEntries(ctx, []aliyun.NewRouteEntry{ne(e, "10.244.1.0/24", e.Hop1)}); err != nil {
			t.Fatal(err)
		}
		_, err := e.API.CreateRouteEntries(ctx, []aliyun.NewRouteEntry{ne(e, "10.244.2.0/24", e.Hop1)})
		if aliyun.Code(err) != "IncorrectRouteEntryStatus" {
			t.Fatalf("write while Pending: %v", err)
		}
	})

	t.Run("per-entry failures: duplicate, quota, foreign next hop, reserved destinations", func(t *testing.T) {
		e := newEnv(t)
		if _, err := e.API.CreateRouteEntries(ctx, []aliyun.NewRouteEntry{ne(e, "10.244.1.0/24", e.Hop1)}); err != nil {
			t.Fatal(err)
		}
		e.Advance(e.Pending)
		n := len(custom(t, e))
		e.SetQuota(n + 1)
		r, err := e.API.CreateRouteEntries(ctx, []aliyun.NewRouteEntry{ne(e, "10.244.1.0/24", e.Hop2), ne(e, "10.244.2.0/24", e.Hop2),
			ne(e, "10.244.3.0/24", e.Hop1), ne(e, "10.244.4.0/24", "i-notinthisvpc"), ne(e, "100.64.9.0/24", e.Hop1),
			ne(e, e.VSwitchSubnet.String(), e.Hop1)})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"10.244.1.0/24=VPC_ROUTE_ENTRY_CIDR_BLOCK_DUPLICATE", "10.244.3.0/24=QuotaExceeded",
			"10.244.4.0/24=InvalidNextHopId.NotFound", "100.64.9.0/24=InvalidCidrBlock", e.VSwitchSubnet.String() + "=InvalidCidrBlock"}
		sort.Strings(want)
		if got := codes(r); r.Succeeded != 1 || len(got) != len(want) || func() bool {
			for i := range got {
				if got[i] != want[i] {
					return true
				}
			}
			return false
		}() {
			t.Fatalf("succeeded %d, failures %v; want 1 and %v", r.Succeeded, got, want)
		}
		e.Advance(e.Pending)
		if r, err := e.API.DeleteRouteEntries(ctx, []aliyun.RouteEntry{{TableID: e.Table, ID: "rte-nope",
			Dst: netip.MustParsePrefix("10.9.9.0/24")}}); err != nil || len(r.Failed) != 1 || r.Failed[0].Code != "VPC_ROUTER_ENTRY_NOT_EXIST" {
			t.Fatalf("delete unknown: %+v %v", r, err)
		}
	})
}
