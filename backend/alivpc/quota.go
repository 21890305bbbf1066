package alivpc

import (
	"context"
	"time"

	"k8s.io/klog/v2"
)

// QuotaAPI reads the route-table quota from the cloud's Quota Center (*aliyun.Client implements it).
type QuotaAPI interface {
	RouteEntryQuota(ctx context.Context) (int, error)
}

// quotaSource is the leader's figure for the custom entries a table may hold: the Quota Center's when it
// answers (re-read every refresh, so a raised quota shows within minutes), else Backend.RouteTableQuota.
type quotaSource struct {
	api        QuotaAPI
	configured int
	refresh    time.Duration

	at     time.Time
	value  int
	source string
}

// Sources of the quota figure, as the log (and weft quota) name them.
const (
	quotaFromAPI    = "quotas API"
	quotaFromConfig = "Backend.RouteTableQuota"
)

// get returns the quota and where it came from, calling the API at most once per refresh.
func (q *quotaSource) get(ctx context.Context, now time.Time) (int, string) {
	if q.source != "" && now.Sub(q.at) < q.refresh {
		return q.value, q.source
	}
	q.at = now
	v, err := q.api.RouteEntryQuota(ctx)
	switch {
	case err == nil && v > 0:
		if q.source != quotaFromAPI || q.value != v {
			klog.Infof("ali-vpc: route-table quota %d (source: %s)", v, quotaFromAPI)
		}
		q.value, q.source = v, quotaFromAPI
	default:
		if q.source != quotaFromConfig {
			klog.Warningf("ali-vpc: route-table quota %d (source: %s; the quotas API did not answer: %v)", q.configured, quotaFromConfig, err)
		}
		q.value, q.source = q.configured, quotaFromConfig
	}
	return q.value, q.source
}
