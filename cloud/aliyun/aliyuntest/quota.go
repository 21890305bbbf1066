package aliyuntest

import (
	"context"
	"testing"
)

// QuotaAPI is the route-entry quota surface under contract (*aliyun.Client implements it).
type QuotaAPI interface {
	RouteEntryQuota(ctx context.Context) (int, error)
}

// QuotaEnv is one fresh world whose route tables all start at the service default of 200 custom entries.
type QuotaEnv struct {
	API QuotaAPI
	// SetQuota changes the quota of every route table of the region (the Quota Center's figure is regional).
	SetQuota func(int)
}

// RunQuotaContract checks the route-entry quota as the Quota Center answers it; newEnv builds a fresh world per
// subtest.
func RunQuotaContract(t *testing.T, newEnv func(t *testing.T) QuotaEnv) {
	ctx := context.Background()
	t.Run("the default quota is 200", func(t *testing.T) {
		e := newEnv(t)
		if q, err := e.API.RouteEntryQuota(ctx); err != nil || q != 200 {
			t.Fatalf("RouteEntryQuota = %d, %v; want 200", q, err)
		}
	})
	t.Run("a changed quota is answered at once", func(t *testing.T) {
		e := newEnv(t)
		for _, want := range []int{12, 1000, 3} {
			e.SetQuota(want)
			if q, err := e.API.RouteEntryQuota(ctx); err != nil || q != want {
				t.Fatalf("after setting %d: RouteEntryQuota = %d, %v", want, q, err)
			}
		}
	})
}
