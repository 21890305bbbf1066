package sim

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

const gmt = "2006-01-02T15:04:05Z"

// page applies PageNumber (1..2^31-1, an Integer of the API) and PageSize (default 10, at most 50) and returns
// the window and the echo fields. With both bounded, (num-1)*size cannot overflow.
func page(p params, n int) (lo, hi, num, size int, err *APIError) {
	if num, err = p.intIn("PageNumber", 1, 1, maxInt32); err != nil {
		return 0, 0, 0, 0, err
	}
	if size, err = p.intIn("PageSize", 10, 1, 50); err != nil {
		return 0, 0, 0, 0, err
	}
	lo = min((num-1)*size, n)
	hi = min(lo+size, n)
	return lo, hi, num, size, nil
}

// nextToken decodes the NextToken of MaxResult(s) paging: the offset of the next page, 0 when absent.
func nextToken(p params) (int, *APIError) {
	tok := p.get("NextToken")
	if tok == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	n, err2 := strconv.Atoi(string(b))
	if err != nil || err2 != nil || n < 0 || n > maxInt32 {
		return 0, apiErr(400, "InvalidNextToken", "The specified parameter NextToken %q is not valid.", tok)
	}
	return n, nil
}

func (w *World) describeVpcs(p params) (any, *APIError) {
	var list []map[string]any
	for _, v := range w.st.VPCs {
		if id := p.get("VpcId"); id != "" && id != v.ID {
			continue
		}
		var sws, rts []string
		for _, s := range w.st.VSwitches {
			if s.VPCID == v.ID {
				sws = append(sws, s.ID)
			}
		}
		for _, t := range w.st.RouteTables {
			if t.VPCID == v.ID {
				rts = append(rts, t.ID)
			}
		}
		list = append(list, map[string]any{"VpcId": v.ID, "RegionId": w.st.RegionID, "Status": "Available", "VpcName": v.Name,
			"CidrBlock": v.CIDR, "VRouterId": v.VRouterID, "VSwitchIds": map[string]any{"VSwitchId": nonNil(sws)},
			"RouterTableIds": map[string]any{"RouterTableIds": nonNil(rts)}, "IsDefault": false,
			"CreationTime": v.Created.UTC().Format(gmt)})
	}
	lo, hi, num, size, err := page(p, len(list))
	if err != nil {
		return nil, err
	}
	return map[string]any{"Vpcs": map[string]any{"Vpc": nonNil(list[lo:hi])}, "TotalCount": len(list), "PageNumber": num, "PageSize": size}, nil
}

func (w *World) describeVSwitches(p params) (any, *APIError) {
	var list []map[string]any
	for _, s := range w.st.VSwitches {
		if id := p.get("VSwitchId"); id != "" && id != s.ID {
			continue
		}
		if id := p.get("VpcId"); id != "" && id != s.VPCID {
			continue
		}
		if z := p.get("ZoneId"); z != "" && z != s.Zone {
			continue
		}
		list = append(list, map[string]any{"VSwitchId": s.ID, "VpcId": s.VPCID, "ZoneId": s.Zone, "CidrBlock": s.CIDR,
			"Ipv6CidrBlock": s.IPv6CIDR, "AvailableIpAddressCount": w.available(s), "Status": "Available", "IsDefault": false,
			"RouteTable": map[string]any{"RouteTableId": s.RouteTableID, "RouteTableType": "System"}})
	}
	lo, hi, num, size, err := page(p, len(list))
	if err != nil {
		return nil, err
	}
	return map[string]any{"VSwitches": map[string]any{"VSwitch": nonNil(list[lo:hi])}, "TotalCount": len(list), "PageNumber": num, "PageSize": size}, nil
}

// available is the vSwitch's free IPv4 addresses: the block minus the 4 the service reserves, minus those in use.
func (w *World) available(s *VSwitch) int {
	p, err := netip.ParsePrefix(s.CIDR)
	if err != nil {
		return 0
	}
	used := 0
	for a := range w.usedAddrs(s) {
		if strings.Contains(a, ".") {
			used++
		}
	}
	return max((1<<(32-p.Bits()))-4-used, 0)
}

func (w *World) describeRouteTableList(p params) (any, *APIError) {
	var list []map[string]any
	for _, t := range sortedTables(w.st.RouteTables) {
		if id := p.get("VpcId"); id != "" && id != t.VPCID {
			continue
		}
		if id := p.get("RouteTableId"); id != "" && id != t.ID {
			continue
		}
		if typ := p.get("RouteTableType"); typ != "" && typ != t.Type {
			continue
		}
		v := w.vpc(t.VPCID)
		var sws []string
		for _, s := range w.st.VSwitches {
			if s.RouteTableID == t.ID {
				sws = append(sws, s.ID)
			}
		}
		list = append(list, map[string]any{"RouteTableId": t.ID, "VpcId": t.VPCID, "RouteTableType": t.Type, "RouterType": "VRouter",
			"RouterId": v.VRouterID, "Status": "Available", "CreationTime": t.Created.UTC().Format(gmt),
			"VSwitchIds": map[string]any{"VSwitchId": nonNil(sws)}, "Tags": map[string]any{"Tag": []any{}}})
	}
	lo, hi, num, size, err := page(p, len(list))
	if err != nil {
		return nil, err
	}
	return map[string]any{"RouterTableList": map[string]any{"RouterTableListType": nonNil(list[lo:hi])},
		"TotalCount": len(list), "PageNumber": num, "PageSize": size}, nil
}

// describeRouteTables is the older table listing, by VRouterId, with the entries inline.
func (w *World) describeRouteTables(p params) (any, *APIError) {
	now := w.clock.Now()
	var list []map[string]any
	for _, t := range sortedTables(w.st.RouteTables) {
		v := w.vpc(t.VPCID)
		if id := p.get("VRouterId"); id != "" && id != v.VRouterID {
			continue
		}
		if id := p.get("RouteTableId"); id != "" && id != t.ID {
			continue
		}
		if typ := p.get("Type"); typ != "" && typ != t.Type {
			continue
		}
		var sws []string
		var entries []map[string]any
		for _, s := range w.st.VSwitches {
			if s.RouteTableID == t.ID {
				sws = append(sws, s.ID)
			}
		}
		for _, e := range t.Entries {
			entries = append(entries, w.entryJSON(t, e, now))
		}
		list = append(list, map[string]any{"RouteTableId": t.ID, "VRouterId": v.VRouterID, "RouteTableType": t.Type,
			"CreationTime": t.Created.UTC().Format(gmt), "Status": "Available", "VSwitchIds": map[string]any{"VSwitchId": nonNil(sws)},
			"RouteEntrys": map[string]any{"RouteEntry": nonNil(entries)}})
	}
	lo, hi, num, size, err := page(p, len(list))
	if err != nil {
		return nil, err
	}
	return map[string]any{"RouteTables": map[string]any{"RouteTable": nonNil(list[lo:hi])}, "TotalCount": len(list), "PageNumber": num, "PageSize": size}, nil
}

func (w *World) entryJSON(t *RouteTable, e *RouteEntry, now time.Time) map[string]any {
	return map[string]any{"RouteEntryId": e.ID, "RouteTableId": t.ID, "DestinationCidrBlock": e.Dst, "Type": e.Type,
		"Status": w.status(e, now), "IpVersion": ipVersion(e.Dst), "RouteEntryName": e.Name, "Description": e.Description,
		"InstanceId": e.NextHopID, "NextHopType": e.NextHopType, "Origin": "", "GmtModified": e.Modified.UTC().Format(gmt),
		"NextHops": map[string]any{"NextHop": []map[string]any{{"NextHopId": e.NextHopID, "NextHopType": e.NextHopType,
			"Enabled": 1, "Weight": 0, "NextHopRegionId": w.st.RegionID,
			"NextHopRelatedInfo": map[string]any{"InstanceId": "", "InstanceType": "", "RegionId": ""}}}}}
}

func ipVersion(dst string) string {
	if strings.Contains(dst, ":") {
		return "IPv6"
	}
	return "IPv4"
}

// describeRouteEntryList pages with MaxResult / NextToken. The docs say MaxResult is 1..100; the cloud provider
// sends 500, so up to 500 is accepted.
func (w *World) describeRouteEntryList(p params) (any, *APIError) {
	t := w.table(p.get("RouteTableId"))
	if t == nil {
		return nil, apiErr(404, "InvalidRouteTableId.NotFound", "The specified route table %q does not exist.", p.get("RouteTableId"))
	}
	max, e := p.intIn("MaxResult", 10, 1, 500)
	if e != nil {
		return nil, e
	}
	start, e := nextToken(p)
	if e != nil {
		return nil, e
	}
	list, e := p.list("DestCidrBlockList")
	if e != nil {
		return nil, e
	}
	dsts := map[string]bool{}
	for _, d := range list {
		dsts[d] = true
	}
	now := w.clock.Now()
	var match []*RouteEntry
	for _, e := range t.Entries {
		if id := p.get("RouteEntryId"); id != "" && id != e.ID {
			continue
		}
		if d := p.get("DestinationCidrBlock"); d != "" && d != e.Dst {
			continue
		}
		if len(dsts) > 0 && !dsts[e.Dst] {
			continue
		}
		if typ := p.get("RouteEntryType"); typ != "" && typ != e.Type {
			continue
		}
		if id := p.get("NextHopId"); id != "" && id != e.NextHopID {
			continue
		}
		if v := p.get("IpVersion"); v != "" && !strings.EqualFold(v, ipVersion(e.Dst)) {
			continue
		}
		match = append(match, e)
	}
	start = min(start, len(match))
	end := min(start+max, len(match))
	next := ""
	if end < len(match) {
		next = base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(end)))
	}
	page := make([]map[string]any, 0, end-start)
	for _, e := range match[start:end] {
		page = append(page, w.entryJSON(t, e, now))
	}
	return map[string]any{"NextToken": next, "RouteEntrys": map[string]any{"RouteEntry": page}}, nil
}

// writable checks the table-wide conditions of a write: no entry in a transitional state, and spacing.
func (w *World) writable(t *RouteTable, now time.Time) *APIError {
	for _, e := range t.Entries {
		if s := w.status(e, now); s == "Pending" || s == "Deleting" {
			return errIncorrectStatus()
		}
	}
	if !t.LastWrite.IsZero() && now.Sub(t.LastWrite) < w.st.Timing.WriteGap {
		return errTaskConflict()
	}
	return nil
}

// checkDst validates a destination for table t; it returns the per-entry failure code for batches too.
func (w *World) checkDst(t *RouteTable, dst string) (netip.Prefix, *APIError) {
	p, err := netip.ParsePrefix(dst)
	if err != nil || p.Masked() != p {
		return p, apiErr(400, "InvalidCidrBlock.Malformed", "Specified CIDR block %q is not valid.", dst)
	}
	if inCGNAT(p) {
		return p, apiErr(400, "InvalidCidrBlock", "The destination %s falls within 100.64.0.0/10, which is reserved.", dst)
	}
	for _, s := range w.st.VSwitches {
		if s.VPCID != t.VPCID {
			continue
		}
		for _, c := range []string{s.CIDR, s.IPv6CIDR} {
			if sp, err := netip.ParsePrefix(c); err == nil && sp.Overlaps(p) && p.Bits() >= sp.Bits() {
				return p, apiErr(400, "InvalidCidrBlock", "The destination %s falls within the CIDR block %s of vSwitch %s.", dst, c, s.ID)
			}
		}
	}
	if dsts(t)[p.String()] {
		return p, apiErr(400, "InvalidCIDRBlock.Duplicate", "Specified CIDR block is already exists.")
	}
	return p, nil
}

// dsts indexes a table's destinations; the index lives until the table changes (tableIndex.drop).
func dsts(t *RouteTable) map[string]bool {
	if t.index == nil {
		t.index = map[string]bool{}
		for _, e := range t.Entries {
			t.index[e.Dst] = true
		}
	}
	return t.index
}

// nextHopTypes are the documented NextHopType values of CreateRouteEntry (Instance is the default).
var nextHopTypes = map[string]bool{"Instance": true, "HaVip": true, "RouterInterface": true, "NetworkInterface": true,
	"VpnGateway": true, "IPv6Gateway": true, "NatGateway": true, "Attachment": true, "VpcPeer": true, "Ipv4Gateway": true,
	"GatewayEndpoint": true, "Ecr": true, "GatewayLoadBalancerEndpoint": true}

// checkHopType refuses a NextHopType (parameter name) outside the documented values.
func checkHopType(name, typ string) *APIError {
	if typ != "" && !nextHopTypes[typ] {
		return errParam(name, typ, "one of Instance, HaVip, RouterInterface, NetworkInterface, VpnGateway, IPv6Gateway, "+
			"NatGateway, Attachment, VpcPeer, Ipv4Gateway, GatewayEndpoint, Ecr, GatewayLoadBalancerEndpoint")
	}
	return nil
}

func (w *World) checkNextHop(t *RouteTable, typ, id string) *APIError {
	if typ == "" {
		typ = "Instance"
	}
	if typ != "Instance" {
		return nil // other next-hop kinds are accepted as given
	}
	in := w.instance(id)
	if in == nil || w.vswitch(in.VSwitchID) == nil || w.vswitch(in.VSwitchID).VPCID != t.VPCID {
		return apiErr(404, "InvalidNextHopId.NotFound", "The specified next hop %q does not exist in this VPC.", id)
	}
	if in.Status != "Running" {
		return apiErr(400, "IncorrectInstanceStatus", "The current status of instance %s does not support this operation.", id)
	}
	return nil
}

func (w *World) createRouteEntry(p params) (any, *APIError) {
	t := w.table(p.get("RouteTableId"))
	if t == nil {
		return nil, apiErr(404, "InvalidRouteTableId.NotFound", "The specified route table %q does not exist.", p.get("RouteTableId"))
	}
	now := w.clock.Now()
	// A retried create with the same ClientToken returns the entry it made.
	if tok := p.get("ClientToken"); tok != "" {
		for _, e := range t.Entries {
			if e.ClientToken == tok {
				return map[string]any{"RouteEntryId": e.ID}, nil
			}
		}
	}
	hopType, hopID := p.get("NextHopType"), p.get("NextHopId")
	if err := checkHopType("NextHopType", hopType); err != nil {
		return nil, err
	}
	if hopType == "" {
		hopType = "Instance"
	}
	if err := w.writable(t, now); err != nil {
		return nil, err
	}
	dst, err := w.checkDst(t, p.get("DestinationCidrBlock"))
	if err != nil {
		return nil, err
	}
	if err := w.checkNextHop(t, hopType, hopID); err != nil {
		return nil, err
	}
	if customCount(t) >= t.Quota {
		return nil, errQuota()
	}
	e := &RouteEntry{ID: newID("rte"), Dst: dst.String(), NextHopType: hopType, NextHopID: hopID, Type: "Custom",
		Name: p.get("RouteEntryName"), Description: p.get("Description"), ClientToken: p.get("ClientToken"),
		ReadyAt: now.Add(w.st.Timing.EntryPending), Modified: now}
	t.Entries = append(t.Entries, e)
	dsts(t)[e.Dst] = true
	t.LastWrite = now
	return map[string]any{"RouteEntryId": e.ID}, nil
}

func (w *World) findEntry(t *RouteTable, id, dst, hop string) *RouteEntry {
	for _, e := range t.Entries {
		if (id != "" && e.ID == id) || (id == "" && dst != "" && e.Dst == dst && (hop == "" || e.NextHopID == hop)) {
			return e
		}
	}
	return nil
}

func (w *World) deleteRouteEntry(p params) (any, *APIError) {
	id := p.get("RouteEntryId")
	t := w.table(p.get("RouteTableId"))
	if t == nil && id != "" {
		for _, tt := range w.st.RouteTables {
			if w.findEntry(tt, id, "", "") != nil {
				t = tt
			}
		}
	}
	if t == nil {
		return nil, apiErr(404, "InvalidRouteTableId.NotFound", "The specified route table %q does not exist.", p.get("RouteTableId"))
	}
	e := w.findEntry(t, id, p.get("DestinationCidrBlock"), p.get("NextHopId"))
	if e == nil || !e.DeleteAt.IsZero() {
		return nil, apiErr(404, "InvalidRouteEntry.NotFound", "The specified route entry does not exist.")
	}
	if e.Type != "Custom" {
		return nil, apiErr(400, "OperationDenied", "System route entries cannot be deleted.")
	}
	now := w.clock.Now()
	if err := w.writable(t, now); err != nil {
		return nil, err
	}
	e.DeleteAt, e.Modified, t.LastWrite = now, now, now
	return map[string]any{}, nil
}

// batchEntry is one element of RouteEntries.N.
type batchEntry struct {
	table, dst, hop, hopType, id, name, desc string
}

// batch reads RouteEntries.N.*. The SDK numbers entries 1..N in order; a request with gaps (entries 1 and 3) is
// refused as a whole, naming the missing index, rather than processed in part (see params.count).
func batch(p params) ([]batchEntry, *APIError) {
	n, err := p.count("RouteEntries")
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, apiErr(400, "MissingParameter", "RouteEntries is mandatory for this action.")
	}
	if n > 50 {
		return nil, apiErr(400, "InvalidParameter", "RouteEntries accepts at most 50 entries, got %d.", n)
	}
	out := make([]batchEntry, 0, n)
	for i := 1; i <= n; i++ {
		k := fmt.Sprintf("RouteEntries.%d.", i)
		b := batchEntry{table: p.get(k + "RouteTableId"), dst: p.get(k + "DstCidrBlock"), hop: p.get(k + "NextHop"),
			hopType: p.get(k + "NextHopType"), id: p.get(k + "RouteEntryId"), name: p.get(k + "Name"), desc: p.get(k + "Description")}
		if err := checkHopType(k+"NextHopType", b.hopType); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

func failed(b batchEntry, code, msg string) map[string]any {
	return map[string]any{"DstCidrBlock": b.dst, "NextHop": b.hop, "RouteEntryId": b.id, "FailedCode": code, "FailedMessage": msg}
}

// createRouteEntries creates up to 50 entries; the batch is one change of each table it touches (one Pending
// period), and entries fail one by one with per-entry codes.
func (w *World) createRouteEntries(p params) (any, *APIError) {
	entries, err := batch(p)
	if err != nil {
		return nil, err
	}
	now := w.clock.Now()
	checked := map[string]*APIError{}
	counts := map[*RouteTable]int{}
	var ids []string
	var fails []map[string]any
	touched := map[*RouteTable]bool{}
	for _, b := range entries {
		t := w.table(b.table)
		if t == nil {
			return nil, apiErr(404, "InvalidRouteTableId.NotFound", "The specified route table %q does not exist.", b.table)
		}
		if _, done := checked[t.ID]; !done {
			checked[t.ID] = w.writable(t, now)
		}
		if e := checked[t.ID]; e != nil {
			return nil, e // the table is busy: the whole call is refused, as a single create would be
		}
		dst, e := w.checkDst(t, b.dst)
		if e != nil {
			code := e.Code
			if code == "InvalidCIDRBlock.Duplicate" {
				code = "VPC_ROUTE_ENTRY_CIDR_BLOCK_DUPLICATE"
			}
			fails = append(fails, failed(b, code, e.Message))
			continue
		}
		hopType := b.hopType
		if hopType == "" {
			hopType = "Instance"
		}
		if e := w.checkNextHop(t, hopType, b.hop); e != nil {
			fails = append(fails, failed(b, e.Code, e.Message))
			continue
		}
		if _, ok := counts[t]; !ok {
			counts[t] = customCount(t)
		}
		if counts[t] >= t.Quota {
			fails = append(fails, failed(b, "QuotaExceeded", errQuota().Message))
			continue
		}
		counts[t]++
		en := &RouteEntry{ID: newID("rte"), Dst: dst.String(), NextHopType: hopType, NextHopID: b.hop, Type: "Custom",
			Name: b.name, Description: b.desc, ReadyAt: now.Add(w.st.Timing.EntryPending), Modified: now}
		t.Entries = append(t.Entries, en)
		dsts(t)[en.Dst] = true
		touched[t] = true
		ids = append(ids, en.ID)
	}
	for t := range touched {
		t.LastWrite = now
	}
	return map[string]any{"SuccessCount": len(ids), "FailedCount": len(fails), "RouteEntryIds": nonNil(ids),
		"FailedRouteEntries": nonNil(fails)}, nil
}

func (w *World) deleteRouteEntries(p params) (any, *APIError) {
	entries, err := batch(p)
	if err != nil {
		return nil, err
	}
	now := w.clock.Now()
	checked := map[string]*APIError{}
	ok := 0
	var fails []map[string]any
	touched := map[*RouteTable]bool{}
	for _, b := range entries {
		t := w.table(b.table)
		if t == nil {
			return nil, apiErr(404, "InvalidRouteTableId.NotFound", "The specified route table %q does not exist.", b.table)
		}
		if _, done := checked[t.ID]; !done {
			checked[t.ID] = w.writable(t, now)
		}
		if e := checked[t.ID]; e != nil {
			return nil, e
		}
		e := w.findEntry(t, b.id, b.dst, b.hop)
		if e == nil || !e.DeleteAt.IsZero() {
			fails = append(fails, failed(b, "VPC_ROUTER_ENTRY_NOT_EXIST", "The route entry does not exist."))
			continue
		}
		if e.Type != "Custom" {
			fails = append(fails, failed(b, "VPC_ROUTE_ENTRY_STATUS_ERROR", "System route entries cannot be deleted."))
			continue
		}
		e.DeleteAt, e.Modified = now, now
		touched[t] = true
		ok++
	}
	for t := range touched {
		t.LastWrite = now
	}
	return map[string]any{"SuccessCount": ok, "FailedCount": len(fails), "FailedRouteEntries": nonNil(fails)}, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
