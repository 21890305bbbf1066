package eni

import (
	"context"
	"flag"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2"

	"github.com/weftnet/weft/backend"
	"github.com/weftnet/weft/cloud/aliyun/sim"
	"github.com/weftnet/weft/subnet"
)

// An access key secret the cloud refuses, from the net-conf or from ACCESS_KEY_SECRET, makes RegisterNetwork fail
// (the daemon retries it and shows the error in /readyz) without the secret in the error, the log (at the most
// verbose level) or the metrics.
func TestRefusedSecretIsNeverShown(t *testing.T) {
	const secret = "Wr0ngSecretValue42"
	for _, c := range []struct {
		name, keys string
		env        map[string]string
	}{
		{"net-conf", `,"AccessKeyID":"LTAIalisimDefaultKey","AccessKeySecret":"` + secret + `"`, nil},
		{"ACCESS_KEY_SECRET", "", map[string]string{"ACCESS_KEY_ID": "LTAIalisimDefaultKey", "ACCESS_KEY_SECRET": secret}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !runInFreshNetns(t, secret) {
				return
			}
			fs := flag.NewFlagSet("klog", flag.ContinueOnError)
			klog.InitFlags(fs)
			_ = fs.Set("v", "10")
			world := sim.NewWorld(sim.DefaultState(), nil, filepath.Join(t.TempDir(), "alisim.json"))
			api := httptest.NewServer(sim.NewServer(world))
			t.Cleanup(api.Close)
			md := httptest.NewServer(sim.NewMetadata(world, "i-alisim0001"))
			t.Cleanup(md.Close)
			for k, v := range map[string]string{"METADATA_ENDPOINT": strings.TrimPrefix(md.URL, "http://"), "ALICLOUD_CLIENT_SCHEME": "HTTP",
				"VPC_ENDPOINT": strings.TrimPrefix(api.URL, "http://"), "ECS_ENDPOINT": strings.TrimPrefix(api.URL, "http://")} {
				t.Setenv(k, v)
			}
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			reg := prometheus.NewRegistry()
			kube := fake.NewClientset()
			b := &eniBackend{deps: backend.Deps{Kube: kube, NodeName: testNode, Registerer: reg}, m: newMetrics(reg)}
			raw := fmt.Sprintf(`{"Type":"eni","vswitches":{"cn-hangzhou-h":["vsw-alisim0001"]},"security_group":"sg-alisim0001","cluster_id":"c1",
				"checkpoint":%q,"socket":%q%s}`, filepath.Join(t.TempDir(), "ckpt.json"), filepath.Join(t.TempDir(), "eni.sock"), c.keys)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			_, err := b.RegisterNetwork(ctx, &subnet.Config{BackendType: Name, Backend: []byte(raw)})
			if err == nil {
				t.Fatal("RegisterNetwork with a refused secret succeeded")
			}
			t.Logf("RegisterNetwork: %v", err) // the parent checks all output for the secret
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error shows the secret: %v", err)
			}
			mfs, gerr := reg.Gather()
			if gerr != nil {
				t.Fatal(gerr)
			}
			for _, mf := range mfs {
				if strings.Contains(mf.String(), secret) {
					t.Errorf("metric %s shows the secret", mf.GetName())
				}
			}
			klog.Flush()
		})
	}
}
