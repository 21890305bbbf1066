package aliyun

import (
	"context"
	"fmt"

	"github.com/aliyun/alibaba-cloud-sdk-go/services/quotas"
)

// Quota Center names of the route-entry quota.
const (
	QuotaProductVPC        = "vpc"
	QuotaRouteEntries      = "vpc_quota_route_entrys_num" // custom route entries one route table may hold
	QuotaDimensionRegionID = "regionId"
)

// RouteEntryQuota reads from the Quota Center (quotas 2020-05-10 GetProductQuota, product vpc) how many custom
// entries a route table of the client's region may hold. The Quota Center keys this quota by its documented
// dimension regionId alone (the dimensions it defines are regionId, zoneId, chargeType, networkType and
// resourceType; none names a route table or a VPC), so the answer is the one figure that holds for every route
// table of the account in the region. A refusal (no quotas:GetProductQuota permission, a region without the
// Quota Center) is returned as the APIError; the caller falls back to its configured figure.
func (c *Client) RouteEntryQuota(ctx context.Context) (int, error) {
	var resp *quotas.GetProductQuotaResponse
	err := c.callQuotas(ctx, "GetProductQuota", func(cl *quotas.Client) (err error) {
		req := quotas.CreateGetProductQuotaRequest()
		c.prepareQuotas(req)
		req.ProductCode, req.QuotaActionCode = QuotaProductVPC, QuotaRouteEntries
		req.Dimensions = &[]quotas.GetProductQuotaDimensions{{Key: QuotaDimensionRegionID, Value: c.c.Region}}
		resp, err = cl.GetProductQuota(req)
		return err
	})
	if err != nil {
		return 0, err
	}
	q := resp.Quota.TotalQuota
	if q < 1 || q != float64(int(q)) {
		return 0, fmt.Errorf("GetProductQuota %s in %s: TotalQuota %v is not a positive whole number", QuotaRouteEntries, c.c.Region, q)
	}
	return int(q), nil
}
