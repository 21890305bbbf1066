package sim

import "fmt"

// The Quota Center (quotas 2020-05-10) as far as weft reads it: the route-entry quota of product vpc.
const (
	quotaProduct      = "vpc"
	quotaRouteEntries = "vpc_quota_route_entrys_num"
)

// quotasActions are the Quota Center actions alisim serves.
var quotasActions = map[string]handler{
	"GetProductQuota":   (*World).getProductQuota,
	"ListProductQuotas": (*World).listProductQuotas,
}

// routeEntryQuota is the quota item of the route-entry quota for the world's region. The Quota Center keys it
// by regionId only, one figure for every table of the region, while alisim keeps a quota per table (so a test
// can fill one table): the region's figure is the smallest table quota, the one that holds for every table, and
// TotalUsage is the custom entries of the fullest table. /admin/quota changes a table's quota and so this answer.
func (w *World) routeEntryQuota() map[string]any {
	quota, used := 0, 0
	for _, t := range w.st.RouteTables {
		if quota == 0 || t.Quota < quota {
			quota = t.Quota
		}
		used = max(used, customCount(t))
	}
	if len(w.st.RouteTables) == 0 {
		quota = 200
	}
	return map[string]any{"ProductCode": quotaProduct, "QuotaActionCode": quotaRouteEntries,
		"QuotaName": "Custom route entries per route table", "QuotaDescription": "The maximum number of custom route entries that a route table can contain.",
		"QuotaType": "normal", "QuotaCategory": "CommonQuota", "QuotaUnit": "Count", "ApplicableType": "continuous",
		"Adjustable": true, "Consumable": true, "TotalQuota": float64(quota), "TotalUsage": float64(used),
		"ApplicableRange": []float64{float64(quota), 1000}, "Dimensions": map[string]string{"regionId": w.st.RegionID},
		"QuotaArn": fmt.Sprintf("acs:quotas:%s:alisim:quota/%s/%s", w.st.RegionID, quotaProduct, quotaRouteEntries)}
}

// quotaDimensions checks Dimensions.N.Key/Value: regionId, naming the world's region, is the only dimension of
// product vpc, and it is required.
func (w *World) quotaDimensions(p params, required bool) *APIError {
	region := ""
	dims, err := p.pairs("Dimensions")
	if err != nil {
		return err
	}
	for _, kv := range dims {
		k, v := kv[0], kv[1]
		if k == "" && v == "" {
			continue
		}
		if k != "regionId" {
			return apiErr(400, "InvalidParameter", "The dimension %q is not supported by product vpc (supported: regionId).", k)
		}
		region = v
	}
	switch {
	case region == "" && required:
		return apiErr(400, "InvalidParameter", "The required dimension regionId is missing.")
	case region != "" && region != w.st.RegionID:
		return apiErr(400, "InvalidParameter", "The dimension regionId %q is not a region of this account (alisim serves %s).", region, w.st.RegionID)
	}
	return nil
}

func (w *World) getProductQuota(p params) (any, *APIError) {
	if c := p.get("ProductCode"); c != quotaProduct {
		return nil, apiErr(400, "InvalidParameter", "The specified ProductCode %q is not valid (alisim serves vpc).", c)
	}
	if c := p.get("QuotaActionCode"); c != quotaRouteEntries {
		return nil, apiErr(400, "InvalidParameter", "The specified QuotaActionCode %q does not exist for product vpc (alisim serves %s).", c, quotaRouteEntries)
	}
	if e := w.quotaDimensions(p, true); e != nil {
		return nil, e
	}
	return map[string]any{"Quota": w.routeEntryQuota()}, nil
}

func (w *World) listProductQuotas(p params) (any, *APIError) {
	if c := p.get("ProductCode"); c != quotaProduct {
		return nil, apiErr(400, "InvalidParameter", "The specified ProductCode %q is not valid (alisim serves vpc).", c)
	}
	if e := w.quotaDimensions(p, false); e != nil {
		return nil, e
	}
	items := []any{}
	if c := p.get("QuotaActionCode"); c == "" || c == quotaRouteEntries {
		items = append(items, w.routeEntryQuota())
	}
	return map[string]any{"Quotas": items, "TotalCount": len(items), "MaxResults": 30}, nil
}
