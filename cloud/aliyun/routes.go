package aliyun

import (
	"context"
	"net/netip"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/vpc"
)

// RouteTables lists the VPC's route tables.
func (c *Client) RouteTables(ctx context.Context, vpcID string) ([]RouteTable, error) {
	var out []RouteTable
	for pageNo := 1; ; pageNo++ {
		var resp *vpc.DescribeRouteTableListResponse
		err := c.call(ctx, "DescribeRouteTableList", func(cl *vpc.Client) (err error) {
			req := vpc.CreateDescribeRouteTableListRequest()
			c.prepare(req)
			req.VpcId, req.PageNumber, req.PageSize = vpcID, requests.NewInteger(pageNo), requests.NewInteger(50)
			resp, err = cl.DescribeRouteTableList(req)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, t := range resp.RouterTableList.RouterTableListType {
			out = append(out, RouteTable{ID: t.RouteTableId, VPCID: t.VpcId, Type: TableType(t.RouteTableType)})
		}
		if len(out) >= resp.TotalCount || len(resp.RouterTableList.RouterTableListType) == 0 {
			return out, nil
		}
	}
}

// RouteEntries lists every entry of a table (all pages).
func (c *Client) RouteEntries(ctx context.Context, tableID string) ([]RouteEntry, error) {
	var out []RouteEntry
	token := ""
	for {
		var resp *vpc.DescribeRouteEntryListResponse
		err := c.call(ctx, "DescribeRouteEntryList", func(cl *vpc.Client) (err error) {
			req := vpc.CreateDescribeRouteEntryListRequest()
			c.prepare(req)
			req.RouteTableId, req.MaxResult, req.NextToken = tableID, requests.NewInteger(100), token
			resp, err = cl.DescribeRouteEntryList(req)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, e := range resp.RouteEntrys.RouteEntry {
			if re, ok := entryFrom(tableID, e); ok {
				out = append(out, re)
			}
		}
		if resp.NextToken == "" {
			return out, nil
		}
		token = resp.NextToken
	}
}

// CreateRouteEntry creates one entry; retries reuse one ClientToken, so a create that timed out but succeeded is
// not made twice.
func (c *Client) CreateRouteEntry(ctx context.Context, e NewRouteEntry) (string, error) {
	token := newToken()
	var id string
	err := c.call(ctx, "CreateRouteEntry", func(cl *vpc.Client) error {
		req := vpc.CreateCreateRouteEntryRequest()
		c.prepare(req)
		req.RouteTableId, req.DestinationCidrBlock, req.NextHopId = e.TableID, e.Dst.String(), e.NextHopID
		req.NextHopType = hopType(e.NextHopType)
		req.RouteEntryName, req.Description, req.ClientToken = e.Name, e.Description, token
		resp, err := cl.CreateRouteEntry(req)
		if err == nil {
			id = resp.RouteEntryId
		}
		return err
	})
	return id, err
}

// DeleteRouteEntry deletes one entry by id.
func (c *Client) DeleteRouteEntry(ctx context.Context, tableID, entryID string) error {
	return c.call(ctx, "DeleteRouteEntry", func(cl *vpc.Client) error {
		req := vpc.CreateDeleteRouteEntryRequest()
		c.prepare(req)
		req.RouteTableId, req.RouteEntryId = tableID, entryID
		_, err := cl.DeleteRouteEntry(req)
		return err
	})
}

func hopType(t string) string {
	if t == "" {
		return "Instance"
	}
	return t
}

// CreateRouteEntries creates entries in batches of at most MaxBatch; per-entry failures are reported, not
// returned as an error. A call-level refusal (busy table, quota, throttling after retries) is returned as an
// error with the results of earlier batches.
func (c *Client) CreateRouteEntries(ctx context.Context, entries []NewRouteEntry) (BatchResult, error) {
	var res BatchResult
	for len(entries) > 0 {
		n := min(len(entries), MaxBatch)
		chunk := entries[:n]
		entries = entries[n:]
		var resp *vpc.CreateRouteEntriesResponse
		err := c.call(ctx, "CreateRouteEntries", func(cl *vpc.Client) (err error) {
			req := vpc.CreateCreateRouteEntriesRequest()
			c.prepare(req)
			list := make([]vpc.CreateRouteEntriesRouteEntries, 0, len(chunk))
			for _, e := range chunk {
				list = append(list, vpc.CreateRouteEntriesRouteEntries{RouteTableId: e.TableID, DstCidrBlock: e.Dst.String(),
					NextHop: e.NextHopID, NextHopType: hopType(e.NextHopType), Name: e.Name, Description: e.Description,
					IpVersion: ipVersion(e.Dst)})
			}
			req.RouteEntries = &list
			resp, err = cl.CreateRouteEntries(req)
			return err
		})
		if err != nil {
			return res, err
		}
		res.Succeeded += resp.SuccessCount
		res.EntryIDs = append(res.EntryIDs, resp.RouteEntryIds...)
		res.Failed = append(res.Failed, failures(resp.FailedRouteEntries)...)
	}
	return res, nil
}

// DeleteRouteEntries deletes entries by id in batches of at most MaxBatch.
func (c *Client) DeleteRouteEntries(ctx context.Context, entries []RouteEntry) (BatchResult, error) {
	var res BatchResult
	for len(entries) > 0 {
		n := min(len(entries), MaxBatch)
		chunk := entries[:n]
		entries = entries[n:]
		var resp *vpc.DeleteRouteEntriesResponse
		err := c.call(ctx, "DeleteRouteEntries", func(cl *vpc.Client) (err error) {
			req := vpc.CreateDeleteRouteEntriesRequest()
			c.prepare(req)
			list := make([]vpc.DeleteRouteEntriesRouteEntries, 0, len(chunk))
			for _, e := range chunk {
				list = append(list, vpc.DeleteRouteEntriesRouteEntries{RouteTableId: e.TableID, RouteEntryId: e.ID,
					DstCidrBlock: e.Dst.String(), NextHop: e.NextHopID})
			}
			req.RouteEntries = &list
			resp, err = cl.DeleteRouteEntries(req)
			return err
		})
		if err != nil {
			return res, err
		}
		res.Succeeded += resp.SuccessCount
		res.Failed = append(res.Failed, failures(resp.FailedRouteEntries)...)
	}
	return res, nil
}

func failures(in []vpc.FailedRouteEntriesItem) []EntryFailure {
	var out []EntryFailure
	for _, f := range in {
		dst, _ := netip.ParsePrefix(f.DstCidrBlock)
		out = append(out, EntryFailure{Dst: dst, NextHop: f.NextHop, EntryID: f.RouteEntryId, Code: f.FailedCode, Message: f.FailedMessage})
	}
	return out
}

func ipVersion(p netip.Prefix) string {
	if p.Addr().Is6() {
		return "IPv6"
	}
	return "IPv4"
}

// RouteEntryByDst returns the entry of a table for one destination (a single filtered call), or nil.
func (c *Client) RouteEntryByDst(ctx context.Context, tableID string, dst netip.Prefix) (*RouteEntry, error) {
	var resp *vpc.DescribeRouteEntryListResponse
	err := c.call(ctx, "DescribeRouteEntryList", func(cl *vpc.Client) (err error) {
		req := vpc.CreateDescribeRouteEntryListRequest()
		c.prepare(req)
		req.RouteTableId, req.DestinationCidrBlock = tableID, dst.String()
		resp, err = cl.DescribeRouteEntryList(req)
		return err
	})
	if err != nil || len(resp.RouteEntrys.RouteEntry) == 0 {
		return nil, err
	}
	re, ok := entryFrom(tableID, resp.RouteEntrys.RouteEntry[0])
	if !ok {
		re.Dst = dst
	}
	return &re, nil
}

// entryFrom reads an SDK route entry; ok is false when its destination does not parse.
func entryFrom(tableID string, e vpc.RouteEntry) (RouteEntry, bool) {
	dst, err := netip.ParsePrefix(e.DestinationCidrBlock)
	re := RouteEntry{ID: e.RouteEntryId, TableID: tableID, Dst: dst, Type: EntryType(e.Type), Status: EntryStatus(e.Status),
		NextHopType: e.NextHopType, NextHopID: e.InstanceId, Name: e.RouteEntryName, Description: e.Description}
	if hops := e.NextHops.NextHop; len(hops) > 0 {
		re.NextHopType, re.NextHopID = hops[0].NextHopType, hops[0].NextHopId
	}
	return re, err == nil
}
