package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// quotaEnv is alisim with the given custom entries (by Description) in its table, and a built weft.
type quotaEnv struct {
	bin, host string
	world     *sim.World
	srv       *sim.Server
}

func newQuotaEnv(t *testing.T, descriptions ...string) *quotaEnv {
	t.Helper()
	e := &quotaEnv{bin: filepath.Join(t.TempDir(), "weft")}
	if out, err := exec.Command("go", "build", "-o", e.bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	e.world = sim.NewWorld(sim.DefaultState(), nil, "")
	e.world.SetTiming(sim.Timing{})
	e.srv = sim.NewServer(e.world)
	hs := httptest.NewServer(e.srv)
	t.Cleanup(hs.Close)
	e.host = strings.TrimPrefix(hs.URL, "http://")
	api, err := aliyun.NewClient(aliyun.Config{Region: "cn-hangzhou", VPCEndpoint: e.host, Scheme: "HTTP",
		Credentials: aliyun.Static{AccessKeyID: sim.DefaultAccessKeyID, AccessKeySecret: sim.DefaultAccessKeySecret}})
	if err != nil {
		t.Fatal(err)
	}
	var es []aliyun.NewRouteEntry
	for i, d := range descriptions {
		es = append(es, aliyun.NewRouteEntry{TableID: "vtb-alisim0001", Dst: netip.MustParsePrefix(fmt.Sprintf("10.244.%d.0/24", i+1)),
			NextHopID: "i-alisim0001", Description: d})
	}
	if _, err := api.CreateRouteEntries(context.Background(), es); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *quotaEnv) setQuota(t *testing.T, q int) {
	t.Helper()
	if err := e.world.SetQuota("vtb-alisim0001", q); err != nil {
		t.Fatal(err)
	}
}

// run runs weft quota with alisim's endpoints and key pair; it returns stdout and the exit code.
func (e *quotaEnv) run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(e.bin, append([]string{"quota", "--region", "cn-hangzhou", "--vpc-id", "vpc-alisim0001"}, args...)...)
	cmd.Env = append(os.Environ(), "VPC_ENDPOINT="+e.host, "QUOTAS_ENDPOINT="+e.host, "ALICLOUD_CLIENT_SCHEME=HTTP",
		"ACCESS_KEY_ID="+sim.DefaultAccessKeyID, "ACCESS_KEY_SECRET="+sim.DefaultAccessKeySecret, "METADATA_ENDPOINT=127.0.0.1:1")
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

// The done-when check: a table at a quota of 12 with 10 entries used is a warning (exit 1), and weft
// quota prints the cloud's 12 with its source, not the flag's figure.
func TestQuotaFromTheCloud(t *testing.T) {
	e := newQuotaEnv(t, "weft:c1", "weft:c1", "weft:c1", "weft:c1", "weft:c1", "weft:c1", "weft:c1", "weft:c2", "weft:c2", "ops")
	e.setQuota(t, 12)
	out, code := e.run(t, "--quota", "200", "--cluster-id", "c1")
	if code != 1 || !strings.Contains(out, "quota 12 (source: quotas API)") || !strings.Contains(out, "83.3") {
		t.Fatalf("10 of 12 used: exit %d, want 1 and quota 12 from the quotas API\n%s", code, out)
	}
	out, code = e.run(t, "--cluster-id", "c1", "-o", "json")
	var r quota.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != 1 {
		t.Fatalf("json: exit %d %v\n%s", code, err, out)
	}
	if tb := r.Tables[0]; tb.Quota != 12 || tb.QuotaSource != quota.SourceAPI || tb.Used != 10 || tb.Owned != 7 || tb.OtherWeft != 2 ||
		tb.Foreign != 1 || tb.Free != 2 || tb.Headroom != 2 {
		t.Fatalf("table %+v", tb)
	}
	// Raised in the cloud: no longer a warning, whatever --quota says.
	e.setQuota(t, 1000)
	if out, code := e.run(t, "--quota", "10"); code != 0 || !strings.Contains(out, "quota 1000 (source: quotas API)") {
		t.Fatalf("raised to 1000: exit %d\n%s", code, out)
	}
	// The Quota Center refuses (no quotas:GetProductQuota in the RAM policy): --quota, and the output says so.
	e.srv.SetFault("GetProductQuota", sim.Fault{Errors: map[string]float64{"Forbidden.RAM": 1}})
	out, code = e.run(t, "--quota", "10")
	if code != 2 || !strings.Contains(out, "quota 10 (source: --quota; the quotas API did not answer: ") || !strings.Contains(out, "Forbidden.RAM") {
		t.Fatalf("refused, --quota 10: exit %d, want 2\n%s", code, out)
	}
}

// weft quota against alisim: text and JSON output, the owner counts, and the exit codes scripts branch on.
func TestQuotaCommand(t *testing.T) {
	e := newQuotaEnv(t, "weft:c1", "weft:c1", "someone")
	e.setQuota(t, 4)
	out, code := e.run(t, "--cluster-id", "c1")
	if code != 0 || !strings.Contains(out, "vtb-alisim0001") || !strings.Contains(out, "75.0") {
		t.Fatalf("3 of 4 used: exit %d\n%s", code, out)
	}
	if _, code := e.run(t, "--warning", "50", "--critical", "90"); code != 1 {
		t.Fatalf("75%% with warning at 50%%: exit %d, want 1", code)
	}
	e.setQuota(t, 3)
	out, code = e.run(t, "--cluster-id", "c1", "-o", "json")
	if code != 2 {
		t.Fatalf("full table: exit %d, want 2", code)
	}
	var r quota.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	tb := r.Tables[0]
	if r.Level != quota.Critical || tb.Used != 3 || tb.Owned != 2 || tb.OtherWeft != 0 || tb.Foreign != 1 || tb.Free != 0 || tb.Quota != 3 || tb.Headroom != 0 {
		t.Fatalf("report %+v", r)
	}
	// The JSON field names are an interface for scripts: keep them stable.
	for _, k := range []string{`"routeTableId"`, `"used"`, `"quota"`, `"quotaSource": "quotas API"`, `"free"`, `"weftOwned"`,
		`"otherWeftClusters"`, `"foreign"`, `"usedPercent"`, `"nodeHeadroom"`, `"level": "critical"`} {
		if !strings.Contains(out, k) {
			t.Errorf("JSON lacks %s", k)
		}
	}
	// Without --cluster-id no entry is this cluster's: weft's are another cluster's, never counted as its own.
	out, _ = e.run(t, "-o", "json")
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.Tables[0].Owned != 0 || r.Tables[0].OtherWeft != 2 {
		t.Fatalf("no --cluster-id: %v %+v", err, r.Tables)
	}
	if _, code := e.run(t, "-o", "yaml"); code != 3 {
		t.Fatalf("bad flag: exit %d, want 3", code)
	}
	cmd := exec.Command(e.bin, "quota", "--region", "cn-hangzhou", "--vpc-id", "vpc-alisim0001")
	cmd.Env = append(os.Environ(), "VPC_ENDPOINT="+e.host, "QUOTAS_ENDPOINT="+e.host, "ALICLOUD_CLIENT_SCHEME=HTTP",
		"ACCESS_KEY_ID="+sim.DefaultAccessKeyID, "ACCESS_KEY_SECRET=wrong-secret-value")
	b, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 || !strings.Contains(string(b), "SignatureDoesNotMatch") || strings.Contains(string(b), "wrong-secret-value") {
		t.Fatalf("wrong secret: %v\n%s", err, b)
	}
}

// Bad input exits 3 naming what is wrong: a VPC that does not exist (it would have a system table), and
// thresholds outside 0 < warning < critical <= 100.
func TestQuotaBadInput(t *testing.T) {
	e := newQuotaEnv(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--vpc-id", "vpc-nope"}, "vpc-nope"},
		{[]string{"--warning", "-5"}, "--warning"},
		{[]string{"--warning", "NaN"}, "--warning"},
		{[]string{"--warning", "0", "--critical", "0"}, "--warning"},
		{[]string{"--critical", "101"}, "--critical"},
	} {
		cmd := exec.Command(e.bin, append([]string{"quota", "--region", "cn-hangzhou", "--vpc-id", "vpc-alisim0001"}, c.args...)...)
		cmd.Env = append(os.Environ(), "VPC_ENDPOINT="+e.host, "QUOTAS_ENDPOINT="+e.host, "ALICLOUD_CLIENT_SCHEME=HTTP",
			"ACCESS_KEY_ID="+sim.DefaultAccessKeyID, "ACCESS_KEY_SECRET="+sim.DefaultAccessKeySecret, "METADATA_ENDPOINT=127.0.0.1:1")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 || strings.Contains(string(out), "overall") || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: %v, stdout %q, stderr %q; want exit 3 naming %s", c.args, err, out, stderr.String(), c.want)
		}
	}
}
