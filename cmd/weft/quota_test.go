package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/cloud/aliyun/sim"
	"github.com/weftnet/weft/internal/quota"
)

// weft quota against alisim: text and JSON output, and the exit codes scripts branch on.
func TestQuotaCommand(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "weft")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	w := sim.NewWorld(sim.DefaultState(), nil, "")
	w.SetTiming(sim.Timing{})
	hs := httptest.NewServer(sim.NewServer(w))
	defer hs.Close()
	host := strings.TrimPrefix(hs.URL, "http://")
	api, _ := aliyun.NewClient(aliyun.Config{Region: "cn-hangzhou", VPCEndpoint: host, Scheme: "HTTP",
		Credentials: aliyun.Static{AccessKeyID: sim.DefaultAccessKeyID, AccessKeySecret: sim.DefaultAccessKeySecret}})
	var es []aliyun.NewRouteEntry
	for i, d := range []string{"weft:c1", "weft:c1", "someone"} {
		es = append(es, aliyun.NewRouteEntry{TableID: "vtb-alisim0001", Dst: netip.MustParsePrefix("10.244." + string(rune('1'+i)) + ".0/24"),
			NextHopID: "i-alisim0001", Description: d})
	}
	if _, err := api.CreateRouteEntries(context.Background(), es); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, int) {
		cmd := exec.Command(bin, append([]string{"quota", "--region", "cn-hangzhou", "--vpc-id", "vpc-alisim0001"}, args...)...)
		cmd.Env = append(os.Environ(), "VPC_ENDPOINT="+host, "ALICLOUD_CLIENT_SCHEME=HTTP",
			"ACCESS_KEY_ID="+sim.DefaultAccessKeyID, "ACCESS_KEY_SECRET="+sim.DefaultAccessKeySecret, "METADATA_ENDPOINT=127.0.0.1:1")
		out, err := cmd.Output()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		}
		return string(out), 0
	}
	out, code := run("--quota", "4")
	if code != 0 || !strings.Contains(out, "vtb-alisim0001") || !strings.Contains(out, "75.0") {
		t.Fatalf("3 of 4 used: exit %d\n%s", code, out)
	}
	if _, code := run("--quota", "4", "--warning", "50", "--critical", "90"); code != 1 {
		t.Fatalf("75%% with warning at 50%%: exit %d, want 1", code)
	}
	out, code = run("--quota", "3", "-o", "json")
	if code != 2 {
		t.Fatalf("full table: exit %d, want 2", code)
	}
	var r quota.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	tb := r.Tables[0]
	if r.Level != quota.Critical || tb.Used != 3 || tb.Owned != 2 || tb.Foreign != 1 || tb.Free != 0 || tb.Quota != 3 || tb.Headroom != 0 {
		t.Fatalf("report %+v", r)
	}
	// The JSON field names are an interface for scripts: keep them stable.
	for _, k := range []string{`"routeTableId"`, `"used"`, `"quota"`, `"free"`, `"weftOwned"`, `"foreign"`, `"usedPercent"`, `"nodeHeadroom"`, `"level": "critical"`} {
		if !strings.Contains(out, k) {
			t.Errorf("JSON lacks %s", k)
		}
	}
	if _, code := run("-o", "yaml"); code != 3 {
		t.Fatalf("bad flag: exit %d, want 3", code)
	}
	cmd := exec.Command(bin, "quota", "--region", "cn-hangzhou", "--vpc-id", "vpc-alisim0001")
	cmd.Env = append(os.Environ(), "VPC_ENDPOINT="+host, "ALICLOUD_CLIENT_SCHEME=HTTP", "ACCESS_KEY_ID="+sim.DefaultAccessKeyID,
		"ACCESS_KEY_SECRET=wrong-secret-value")
	b, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 || !strings.Contains(string(b), "SignatureDoesNotMatch") || strings.Contains(string(b), "wrong-secret-value") {
		t.Fatalf("wrong secret: %v\n%s", err, b)
	}
}
