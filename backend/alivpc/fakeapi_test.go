package alivpc

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/cloud/aliyun/aliyuntest"
	"github.com/weftnet/weft/cloud/routetable"
)

// fakeVPC is an in-memory RouteAPI with a manual clock, modelled on alisim's documented behaviour (README,
// "alisim"): entries stay Pending, then Available; deleted ones stay Deleting, then go; a table refuses every
// write while an entry is Pending or Deleting (IncorrectRouteEntryStatus) and, with a write gap, a write too soon
// after the last (TaskConflict); the quota counts custom entries (Deleting ones until gone), in batches entry
// by entry (QuotaExceeded); a destination inside a vSwitch CIDR or 100.64.0.0/10 is InvalidCidrBlock, a
// duplicate VPC_ROUTE_ENTRY_CIDR_BLOCK_DUPLICATE, an unknown next hop InvalidNextHopId.NotFound; batches take
// 1..50 entries. TestFakeVPCRouteContract holds it to the same contract suite as alisim. Unlike alisim it has
// no HTTP or SDK in between, so call-level errors are not retried (there is no client).
type fakeVPC struct {
	mu        sync.Mutex
	now       time.Time
	step      time.Duration // the clock moves this much on every RouteEntries call (so waits progress)
	pending   time.Duration // how long entries stay Pending, and Deleting
	writeGap  time.Duration
	vswitches []netip.Prefix
	instances map[string]bool
	tables    map[string]*fakeTable
	nextID    int
	calls     map[string]int
	faults    map[string][]error             // per action, call-level errors returned (once each) before acting
	entryFail map[netip.Prefix][]string      // per destination, per-entry failure codes of creates (once each)
	batches   map[string][]int               // per action, the size of each batch
	writes    []string                       // "action table busy?" per write call, for the idle assertion
	onList    func(f *fakeVPC, table string) // called (locked) on every RouteEntries, for tests that change the table meanwhile
}

type fakeTable struct {
	id, vpc   string
	quota     int
	entries   []*fakeEntry
	lastWrite time.Time
}

type fakeEntry struct {
	e                 aliyun.RouteEntry // Status is derived from the times below
	readyAt, deleteAt time.Time
}

var (
	_ RouteAPI            = (*fakeVPC)(nil)
	_ aliyuntest.RouteAPI = (*fakeVPC)(nil)
)

const fakeTableID = "vtb-fake0001"

// newFakeVPC is one VPC with table vtb-fake0001 (quota 200), vSwitches 192.168.0.0/24 and 192.168.1.0/24 (their
// system entries and 100.64.0.0/10's are in the table) and running instances i-alisim0001..3.
func newFakeVPC() *fakeVPC {
	f := &fakeVPC{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), step: time.Second, pending: 3 * time.Second,
		vswitches: []netip.Prefix{netip.MustParsePrefix("192.168.0.0/24"), netip.MustParsePrefix("192.168.1.0/24")},
		instances: map[string]bool{"i-alisim0001": true, "i-alisim0002": true, "i-alisim0003": true},
		tables:    map[string]*fakeTable{}, calls: map[string]int{}, faults: map[string][]error{},
		entryFail: map[netip.Prefix][]string{}, batches: map[string][]int{}}
	f.addTable(fakeTableID, 200)
	return f
}

func (f *fakeVPC) addTable(id string, quota int) {
	t := &fakeTable{id: id, vpc: "vpc-fake0001", quota: quota}
	for _, s := range append(append([]netip.Prefix(nil), f.vswitches...), netip.MustParsePrefix("100.64.0.0/10")) {
		f.nextID++
		t.entries = append(t.entries, &fakeEntry{e: aliyun.RouteEntry{ID: fmt.Sprintf("rte-sys%04d", f.nextID), TableID: id, Dst: s,
			Type: "System", NextHopType: "local"}})
	}
	f.tables[id] = t
}

func (f *fakeVPC) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

func (f *fakeVPC) setQuota(table string, q int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tables[table].quota = q
}

// put adds an entry as if made earlier by someone (Available unless status says otherwise); locked by caller or
// before use.
func (f *fakeVPC) put(table, dst, hop, desc, status string) string {
	f.nextID++
	e := &fakeEntry{e: aliyun.RouteEntry{ID: fmt.Sprintf("rte-%04d", f.nextID), TableID: table, Dst: netip.MustParsePrefix(dst),
		Type: "Custom", NextHopType: "Instance", NextHopID: hop, Description: desc}}
	switch status {
	case "Pending":
		e.readyAt = f.now.Add(f.pending)
	case "Deleting":
		e.deleteAt = f.now
	}
	f.tables[table].entries = append(f.tables[table].entries, e)
	return e.e.ID
}

func (f *fakeVPC) status(e *fakeEntry) routetable.EntryStatus {
	switch {
	case !e.deleteAt.IsZero():
		return "Deleting"
	case f.now.Before(e.readyAt):
		return "Pending"
	default:
		return "Available"
	}
}

// settle drops entries whose deletion completed.
func (f *fakeVPC) settle(t *fakeTable) {
	kept := t.entries[:0]
	for _, e := range t.entries {
		if !e.deleteAt.IsZero() && !f.now.Before(e.deleteAt.Add(f.pending)) {
			continue
		}
		kept = append(kept, e)
	}
	t.entries = kept
}

func (f *fakeVPC) fault(action string) error {
	f.calls[action]++
	if q := f.faults[action]; len(q) > 0 {
		f.faults[action] = q[1:]
		return q[0]
	}
	return nil
}

func apiError(action string, status int, code string) *aliyun.APIError {
	return &aliyun.APIError{Action: action, Status: status, Code: code, Message: code, RequestID: "fake"}
}

func (f *fakeVPC) table(action, id string) (*fakeTable, error) {
	t := f.tables[id]
	if t == nil {
		return nil, apiError(action, 404, "InvalidRouteTableId.NotFound")
	}
	f.settle(t)
	return t, nil
}

func (f *fakeVPC) RouteTables(_ context.Context, vpcID string) ([]aliyun.RouteTable, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fault("DescribeRouteTableList"); err != nil {
		return nil, err
	}
	var out []aliyun.RouteTable
	for _, t := range f.tables {
		if t.vpc == vpcID {
			out = append(out, aliyun.RouteTable{ID: t.id, VPCID: t.vpc, Type: "System"})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (f *fakeVPC) RouteEntries(_ context.Context, tableID string) ([]aliyun.RouteEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fault("DescribeRouteEntryList"); err != nil {
		return nil, err
	}
	if f.onList != nil {
		f.onList(f, tableID)
	}
	t, err := f.table("DescribeRouteEntryList", tableID)
	if err != nil {
		return nil, err
	}
	out := make([]aliyun.RouteEntry, 0, len(t.entries))
	for _, e := range t.entries {
		x := e.e
		x.Status = f.status(e)
		out = append(out, x)
	}
	f.now = f.now.Add(f.step)
	return out, nil
}

func (f *fakeVPC) busy(t *fakeTable) bool {
	for _, e := range t.entries {
		if s := f.status(e); s == "Pending" || s == "Deleting" {
			return true
		}
	}
	return false
}

func (f *fakeVPC) writable(action string, t *fakeTable) error {
	busy := f.busy(t)
	f.writes = append(f.writes, fmt.Sprintf("%s %s busy=%v", action, t.id, busy))
	if busy {
		return apiError(action, 400, "IncorrectRouteEntryStatus")
	}
	if f.writeGap > 0 && !t.lastWrite.IsZero() && f.now.Sub(t.lastWrite) < f.writeGap {
		return apiError(action, 400, "TaskConflict")
	}
	return nil
}

func batchSize(action string, n int) error {
	if n == 0 {
		return apiError(action, 400, "MissingParameter")
	}
	if n > aliyun.MaxBatch {
		return apiError(action, 400, "InvalidParameter")
	}
	return nil
}

// beginBatch is what the service checks before it looks at a batch's entries: the injected fault, the batch
// size, every named table existing and writable (no entry Pending or Deleting, not within the write gap).
func (f *fakeVPC) beginBatch(action string, tables []string) error {
	if err := f.fault(action); err != nil {
		return err
	}
	f.batches[action] = append(f.batches[action], len(tables))
	if err := batchSize(action, len(tables)); err != nil {
		return err
	}
	checked := map[*fakeTable]bool{}
	for _, id := range tables {
		t, err := f.table(action, id)
		if err != nil {
			return err
		}
		if !checked[t] {
			if err := f.writable(action, t); err != nil {
				return err
			}
			checked[t] = true
		}
	}
	return nil
}

func (f *fakeVPC) CreateRouteEntries(_ context.Context, entries []aliyun.NewRouteEntry) (aliyun.BatchResult, error) {
	const action = "CreateRouteEntries"
	f.mu.Lock()
	defer f.mu.Unlock()
	var res aliyun.BatchResult
	tables := make([]string, len(entries))
	for i, n := range entries {
		tables[i] = n.TableID
	}
	if err := f.beginBatch(action, tables); err != nil {
		return res, err
	}
	fail := func(n aliyun.NewRouteEntry, code string) {
		res.Failed = append(res.Failed, aliyun.EntryFailure{Dst: n.Dst, NextHop: n.NextHopID, Code: code, Message: code})
	}
	for _, n := range entries {
		t := f.tables[n.TableID]
		if q := f.entryFail[n.Dst]; len(q) > 0 {
			f.entryFail[n.Dst] = q[1:]
			fail(n, q[0])
			continue
		}
		if code := f.checkDst(t, n.Dst); code != "" {
			fail(n, code)
			continue
		}
		if (n.NextHopType == "" || n.NextHopType == "Instance") && !f.instances[n.NextHopID] {
			fail(n, "InvalidNextHopId.NotFound")
			continue
		}
		if custom(t) >= t.quota {
			fail(n, "QuotaExceeded")
			continue
		}
		f.nextID++
		hop := n.NextHopType
		if hop == "" {
			hop = "Instance"
		}
		e := &fakeEntry{e: aliyun.RouteEntry{ID: fmt.Sprintf("rte-%04d", f.nextID), TableID: t.id, Dst: n.Dst, Type: "Custom",
			NextHopType: hop, NextHopID: n.NextHopID, Name: n.Name, Description: n.Description}, readyAt: f.now.Add(f.pending)}
		t.entries = append(t.entries, e)
		t.lastWrite = f.now
		res.Succeeded++
		res.EntryIDs = append(res.EntryIDs, e.e.ID)
	}
	return res, nil
}

func (f *fakeVPC) checkDst(t *fakeTable, dst netip.Prefix) string {
	if !dst.IsValid() || dst.Masked() != dst {
		return "InvalidCidrBlock.Malformed"
	}
	if cg := netip.MustParsePrefix("100.64.0.0/10"); cg.Overlaps(dst) {
		return "InvalidCidrBlock"
	}
	for _, s := range f.vswitches {
		if s.Overlaps(dst) && dst.Bits() >= s.Bits() {
			return "InvalidCidrBlock"
		}
	}
	for _, e := range t.entries {
		if e.e.Dst == dst { // as alisim: every entry the table holds, Deleting ones until gone
			return "VPC_ROUTE_ENTRY_CIDR_BLOCK_DUPLICATE"
		}
	}
	return ""
}

func custom(t *fakeTable) int {
	n := 0
	for _, e := range t.entries {
		if e.e.Type == "Custom" {
			n++
		}
	}
	return n
}

func (f *fakeVPC) DeleteRouteEntries(_ context.Context, entries []aliyun.RouteEntry) (aliyun.BatchResult, error) {
	const action = "DeleteRouteEntries"
	f.mu.Lock()
	defer f.mu.Unlock()
	var res aliyun.BatchResult
	tables := make([]string, len(entries))
	for i, d := range entries {
		tables[i] = d.TableID
	}
	if err := f.beginBatch(action, tables); err != nil {
		return res, err
	}
	for _, d := range entries {
		t := f.tables[d.TableID]
		var found *fakeEntry
		for _, e := range t.entries {
			if (d.ID != "" && e.e.ID == d.ID) || (d.ID == "" && e.e.Dst == d.Dst && (d.NextHopID == "" || e.e.NextHopID == d.NextHopID)) {
				found = e
			}
		}
		switch {
		case found == nil || !found.deleteAt.IsZero():
			res.Failed = append(res.Failed, aliyun.EntryFailure{Dst: d.Dst, EntryID: d.ID, Code: "VPC_ROUTER_ENTRY_NOT_EXIST"})
		case found.e.Type != "Custom":
			res.Failed = append(res.Failed, aliyun.EntryFailure{Dst: d.Dst, EntryID: d.ID, Code: "VPC_ROUTE_ENTRY_STATUS_ERROR"})
		default:
			found.deleteAt = f.now
			t.lastWrite = f.now
			res.Succeeded++
		}
	}
	return res, nil
}

// custom renders a table's custom entries as sorted "dst via hop [desc] status" lines.
func (f *fakeVPC) custom(table string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tables[table]
	f.settle(t)
	var out []string
	for _, e := range t.entries {
		if e.e.Type == "Custom" {
			out = append(out, fmt.Sprintf("%s via %s [%s] %s", e.e.Dst, e.e.NextHopID, e.e.Description, f.status(e)))
		}
	}
	sort.Strings(out)
	return out
}

func (f *fakeVPC) callCount(action string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[action]
}

// The fake is held to the route contract alisim passes over HTTP with the real SDK.
func TestFakeVPCRouteContract(t *testing.T) {
	aliyuntest.RunRouteContract(t, func(t *testing.T) aliyuntest.Env {
		f := newFakeVPC()
		f.step = 0
		return aliyuntest.Env{API: f, Table: fakeTableID, Hop1: "i-alisim0001", Hop2: "i-alisim0002", Pending: f.pending,
			Advance: f.advance, SetQuota: func(q int) { f.setQuota(fakeTableID, q) }, VSwitchSubnet: netip.MustParsePrefix("192.168.1.0/25")}
	})
}
