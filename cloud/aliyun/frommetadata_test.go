package aliyun_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/cloud/aliyun/sim"
)

// NewFromMetadata takes the overrides, then the environment, then the metadata server, reads only what is
// needed, and its client works with the RAM role of the instance.
func TestNewFromMetadata(t *testing.T) {
	f := newFixture(t, sim.DefaultTiming, nil)
	md := httptest.NewServer(sim.NewMetadata(f.world, "i-alisim0001"))
	t.Cleanup(md.Close)
	ctx := context.Background()
	env := map[string]string{"METADATA_ENDPOINT": strings.TrimPrefix(md.URL, "http://"),
		"VPC_ENDPOINT": strings.TrimPrefix(f.http.URL, "http://"), "ALICLOUD_CLIENT_SCHEME": "HTTP"}
	getenv := func(k string) string { return env[k] }
	reg := prometheus.NewRegistry()
	cl, id, err := aliyun.NewFromMetadata(ctx, aliyun.Options{Getenv: getenv, Registerer: reg,
		Need: aliyun.NeedInstance | aliyun.NeedVPC | aliyun.NeedVPCCIDR})
	if err != nil {
		t.Fatal(err)
	}
	if id.InstanceID != "i-alisim0001" || id.Region != "cn-hangzhou" || id.RegionFrom != "metadata" || id.VPCID != "vpc-alisim0001" ||
		id.VPCFrom != "metadata" || id.VPCCIDR.String() != "192.168.0.0/16" || cl.Region() != "cn-hangzhou" {
		t.Fatalf("identity %+v", id)
	}
	if ts, err := cl.RouteTables(ctx, id.VPCID); err != nil || len(ts) != 1 { // signed with the RAM role's STS keys
		t.Fatalf("route tables with the RAM role: %v %v", ts, err)
	}
	// A second client from the same registry (ali-vpc's RegisterNetwork retried) is fine.
	if _, _, err := aliyun.NewFromMetadata(ctx, aliyun.Options{Getenv: getenv, Registerer: reg}); err != nil {
		t.Fatalf("second client: %v", err)
	}
	// Overrides win and nothing else is read: no metadata server needed.
	env["METADATA_ENDPOINT"] = "127.0.0.1:1"
	_, id, err = aliyun.NewFromMetadata(ctx, aliyun.Options{Getenv: getenv, Region: "cn-beijing", VPCID: "vpc-x", Need: aliyun.NeedVPC})
	if err != nil || id.Region != "cn-beijing" || id.RegionFrom != "configuration" || id.VPCID != "vpc-x" || id.InstanceID != "" {
		t.Fatalf("overrides: %+v %v", id, err)
	}
	env["ALIBABA_CLOUD_REGION_ID"] = "cn-shanghai"
	if _, id, err = aliyun.NewFromMetadata(ctx, aliyun.Options{Getenv: getenv}); err != nil || id.Region != "cn-shanghai" || id.RegionFrom != "ALIBABA_CLOUD_REGION_ID" {
		t.Fatalf("region from the environment: %+v %v", id, err)
	}
	_, _, err = aliyun.NewFromMetadata(ctx, aliyun.Options{Getenv: getenv, Need: aliyun.NeedInstance})
	if err == nil || !strings.Contains(err.Error(), "instance id") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("metadata unreachable: %v", err)
	}
}

// EnvConfig reads every variable of the package, and String never shows a secret.
func TestEnvConfig(t *testing.T) {
	env := map[string]string{"ALIBABA_CLOUD_REGION_ID": "cn-hangzhou", "VPC_ENDPOINT": "v:1", "ECS_ENDPOINT": "e:2", "QUOTAS_ENDPOINT": "q:3",
		"ALICLOUD_CLIENT_SCHEME": "HTTP", "METADATA_ENDPOINT": "m:4", "ACCESS_KEY_ID": "LTAIa", "ACCESS_KEY_SECRET": "secret-a",
		"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAIb", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "secret-b", "ALIBABA_CLOUD_SECURITY_TOKEN": "token-c",
		"ALIBABA_CLOUD_CREDENTIALS_FILE": "/f"}
	e := aliyun.EnvConfig(func(k string) string { return env[k] })
	if e.Region != "cn-hangzhou" || e.VPCEndpoint != "v:1" || e.ECSEndpoint != "e:2" || e.QuotasEndpoint != "q:3" || e.Scheme != "HTTP" ||
		e.MetadataURL() != "http://m:4" || len(e.Keys) != 2 || e.Keys[0].ID != "LTAIa" || e.Keys[1].Var != "ALIBABA_CLOUD_ACCESS_KEY_ID" ||
		e.SecurityToken != "token-c" || e.CredentialsFile != "/f" {
		t.Fatalf("EnvConfig = %+v", e)
	}
	s := e.String()
	for _, secret := range []string{"secret-a", "secret-b", "token-c"} {
		if strings.Contains(s, secret) {
			t.Errorf("String shows %s: %s", secret, s)
		}
	}
	if !strings.Contains(s, "VPC_ENDPOINT=v:1") || !strings.Contains(s, "ACCESS_KEY_ID=LTAIa") {
		t.Errorf("String = %s", s)
	}
}
