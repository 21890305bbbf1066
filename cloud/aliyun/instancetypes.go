package aliyun

import (
	"context"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"

	"github.com/weftnet/weft/cloud/instancetype"
)

// InstanceType carries the ENI figures of an ECS instance type: the SDK-free instancetype.Type (use that
// package where the SDK is not wanted).
type InstanceType = instancetype.Type

// BuiltinInstanceTypesSource says where BuiltinInstanceTypes' figures come from (instancetype.BuiltinSource).
const BuiltinInstanceTypesSource = instancetype.BuiltinSource

// BuiltinInstanceTypes is instancetype.Builtin, kept for callers not yet moved to that package.
func BuiltinInstanceTypes() []InstanceType { return instancetype.Builtin() }

// InstanceTypes describes the given types (all known types when none are given).
func (c *Client) InstanceTypes(ctx context.Context, ids ...string) ([]InstanceType, error) {
	var out []InstanceType
	token := ""
	for {
		var resp *ecs.DescribeInstanceTypesResponse
		err := c.callECS(ctx, "DescribeInstanceTypes", func(cl *ecs.Client) (err error) {
			req := ecs.CreateDescribeInstanceTypesRequest()
			c.prepareECS(req)
			if len(ids) > 0 {
				list := append([]string(nil), ids...)
				req.InstanceTypes = &list
			}
			req.MaxResults, req.NextToken = requests.NewInteger(100), token
			resp, err = cl.DescribeInstanceTypes(req)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, t := range resp.InstanceTypes.InstanceType {
			out = append(out, InstanceType{ID: t.InstanceTypeId, ENIs: t.EniQuantity, IPv4PerENI: t.EniPrivateIpAddressQuantity,
				IPv6PerENI: t.EniIpv6AddressQuantity, ENIsWithTrunk: t.EniTotalQuantity, TrunkSupported: t.EniTrunkSupported})
		}
		if resp.NextToken == "" {
			return out, nil
		}
		token = resp.NextToken
	}
}
