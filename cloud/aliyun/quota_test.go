package aliyun_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/aliyun/alibaba-cloud-sdk-go/services/quotas"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/cloud/aliyun/sim"
)

func quotasClient(t *testing.T, f *fixture) *aliyun.Client {
	return f.client(t, nil, func(c *aliyun.Config) { c.QuotasEndpoint = strings.TrimPrefix(f.http.URL, "http://") })
}

// Refusals of the Quota Center come back as APIErrors the caller can fall back on, after at most two attempts.
func TestRouteEntryQuotaRefusals(t *testing.T) {
	f := newFixture(t, sim.DefaultTiming, nil)
	ctx := context.Background()
	f.srv.SetFault("GetProductQuota", sim.Fault{Errors: map[string]float64{"Forbidden.RAM": 1}})
	cl := quotasClient(t, f)
	if _, err := cl.RouteEntryQuota(ctx); aliyun.Code(err) != "Forbidden.RAM" {
		t.Fatalf("refused: %v", err)
	}
	f.srv.SetFault("GetProductQuota", sim.Fault{Errors: map[string]float64{"ServiceUnavailable": 1}})
	before := f.srv.Calls("GetProductQuota")
	if _, err := cl.RouteEntryQuota(ctx); aliyun.Code(err) != "ServiceUnavailable" {
		t.Fatalf("unavailable: %v", err)
	}
	if n := f.srv.Calls("GetProductQuota") - before; n != 2 {
		t.Fatalf("%d attempts, want 2", n)
	}
	f.srv.SetFault("GetProductQuota", sim.Fault{})
	other := f.client(t, nil, func(c *aliyun.Config) {
		c.Region, c.QuotasEndpoint = "cn-beijing", strings.TrimPrefix(f.http.URL, "http://")
	})
	if _, err := other.RouteEntryQuota(ctx); aliyun.Code(err) != "InvalidParameter" || !strings.Contains(err.Error(), "regionId") {
		t.Fatalf("another region: %v", err)
	}
}

// alisim's Quota Center answers ListProductQuotas and GetProductQuota alike, signed like every other action,
// and insists on the regionId dimension.
func TestAlisimQuotaCenter(t *testing.T) {
	f := newFixture(t, sim.DefaultTiming, nil)
	if err := f.world.SetQuota(table, 12); err != nil {
		t.Fatal(err)
	}
	cl, err := quotas.NewClientWithAccessKey("cn-hangzhou", sim.DefaultAccessKeyID, sim.DefaultAccessKeySecret)
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(f.http.URL, "http://")
	list := quotas.CreateListProductQuotasRequest()
	list.SetDomain(host)
	list.SetScheme("HTTP")
	list.ProductCode = "vpc"
	list.Dimensions = &[]quotas.ListProductQuotasDimensions{{Key: "regionId", Value: "cn-hangzhou"}}
	resp, err := cl.ListProductQuotas(list)
	if err != nil || len(resp.Quotas) != 1 || resp.Quotas[0].QuotaActionCode != aliyun.QuotaRouteEntries || resp.Quotas[0].TotalQuota != 12 {
		t.Fatalf("ListProductQuotas: %+v %v", resp, err)
	}
	get := quotas.CreateGetProductQuotaRequest()
	get.SetDomain(host)
	get.SetScheme("HTTP")
	get.ProductCode, get.QuotaActionCode = "vpc", aliyun.QuotaRouteEntries
	if _, err := cl.GetProductQuota(get); err == nil || !strings.Contains(err.Error(), "regionId") {
		t.Fatalf("GetProductQuota without regionId: %v", err)
	}
	bad, _ := quotas.NewClientWithAccessKey("cn-hangzhou", sim.DefaultAccessKeyID, "wrong")
	get.Dimensions = &[]quotas.GetProductQuotaDimensions{{Key: "regionId", Value: "cn-hangzhou"}}
	if _, err := bad.GetProductQuota(get); err == nil || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Fatalf("a wrong secret: %v", err)
	}
	req, _ := http.NewRequest(http.MethodPost, f.http.URL+"/?Action=GetProductQuota&Version=2020-05-10", nil)
	r, err := http.DefaultClient.Do(req)
	if err != nil || r.StatusCode != 400 {
		t.Fatalf("unsigned: %v %v", r, err)
	}
	r.Body.Close()
}
