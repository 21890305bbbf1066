package aliyun

import (
	"context"
	"net/netip"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/vpc"
)

// VSwitches lists the VPC's vSwitches.
func (c *Client) VSwitches(ctx context.Context, vpcID string) ([]VSwitch, error) {
	var out []VSwitch
	for pageNo := 1; ; pageNo++ {
		var resp *vpc.DescribeVSwitchesResponse
		err := c.call(ctx, "DescribeVSwitches", func(cl *vpc.Client) (err error) {
			req := vpc.CreateDescribeVSwitchesRequest()
			c.prepare(req)
			req.VpcId, req.PageNumber, req.PageSize = vpcID, requests.NewInteger(pageNo), requests.NewInteger(50)
			resp, err = cl.DescribeVSwitches(req)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, s := range resp.VSwitches.VSwitch {
			v := VSwitch{ID: s.VSwitchId, VPCID: s.VpcId, Zone: s.ZoneId, Available: int(s.AvailableIpAddressCount)}
			v.CIDR, _ = netip.ParsePrefix(s.CidrBlock)
			v.IPv6CIDR, _ = netip.ParsePrefix(s.Ipv6CidrBlock)
			out = append(out, v)
		}
		if len(out) >= resp.TotalCount || len(resp.VSwitches.VSwitch) == 0 {
			return out, nil
		}
	}
}
