package aliyun

import (
	"context"
	"net/netip"

	"github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"
)

// UnassignIPv6 releases IPv6 addresses of an ENI (the eni backend's dual stack); addresses (or an ENI) already
// gone count as released, as UnassignIPs does for IPv4. The action takes no ClientToken (as
// UnassignPrivateIpAddresses): it is idempotent by that rule, so a retry after a lost reply is harmless.
func (c *Client) UnassignIPv6(ctx context.Context, eniID string, ips []netip.Addr) error {
	err := c.callECS(ctx, "UnassignIpv6Addresses", func(cl *ecs.Client) error {
		req := ecs.CreateUnassignIpv6AddressesRequest()
		c.prepareECS(req)
		list := make([]string, 0, len(ips))
		for _, a := range ips {
			list = append(list, a.String())
		}
		req.NetworkInterfaceId, req.Ipv6Address = eniID, &list
		_, err := cl.UnassignIpv6Addresses(req)
		return err
	})
	if c := Code(err); c == "InvalidIp.IpUnassigned" || c == "InvalidEniId.NotFound" {
		return nil
	}
	return err
}
