package main

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weftnet/weft/cloud/aliyun/sim"
	"github.com/weftnet/weft/internal/plan"
)

// weft plan as a provisioning script calls it: JSON it can parse, exit codes it can branch on, instance-type
// figures from the built-in table or from DescribeInstanceTypes (alisim here, through the real SDK).
func TestPlanCommand(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "weft")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	w := sim.NewWorld(sim.DefaultState(), nil, "")
	hs := httptest.NewServer(sim.NewServer(w))
	defer hs.Close()
	host := strings.TrimPrefix(hs.URL, "http://")
	run := func(args ...string) (string, string, int) {
		cmd := exec.Command(bin, append([]string{"plan"}, args...)...)
		cmd.Env = append(os.Environ(), "ECS_ENDPOINT="+host, "ALICLOUD_CLIENT_SCHEME=HTTP",
			"ACCESS_KEY_ID="+sim.DefaultAccessKeyID, "ACCESS_KEY_SECRET="+sim.DefaultAccessKeySecret, "METADATA_ENDPOINT=127.0.0.1:1")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), stderr.String(), ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(out), stderr.String(), 0
	}
	decode := func(out string) plan.Plan {
		t.Helper()
		var p plan.Plan
		if err := json.Unmarshal([]byte(out), &p); err != nil {
			t.Fatalf("json: %v\n%s", err, out)
		}
		return p
	}
	eni := []string{"--vpc-cidr", "192.168.0.0/16", "--vswitch-cidr", "192.168.0.0/24", "--pod-vswitch-cidr", "192.168.64.0/18",
		"--instance-type", "ecs.c7.4xlarge,ecs.c6.4xlarge", "--backend", "eni,eni-exclusive", "-o", "json"}
	for _, source := range []string{"builtin", "api"} {
		out, errOut, code := run(append(eni, "--instance-type-source", source, "--region", "cn-hangzhou")...)
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s%s", source, code, out, errOut)
		}
		p := decode(out)
		types := map[string]plan.InstanceTypeInfo{}
		for _, it := range p.Input.InstanceTypes {
			types[it.ID] = it
		}
		if types["ecs.c7.4xlarge"].SharedENIPods != 210 || types["ecs.c7.4xlarge"].ExclusiveENIPods != 7 || types["ecs.c6.4xlarge"].SharedENIPods != 140 {
			t.Fatalf("%s: instance types %+v", source, p.Input.InstanceTypes)
		}
		if source == "api" && p.Input.TypeSource != "DescribeInstanceTypes in cn-hangzhou" {
			t.Fatalf("source %q", p.Input.TypeSource)
		}
		// A mixed fleet: the smaller type binds pods per node.
		if p.Backends[0].Backend != "eni" || p.Backends[0].PodsPerNode != 140 {
			t.Fatalf("%s: %+v", source, p.Backends[0])
		}
	}
	// Exit codes: 0 fits, 1 a named backend does not fit but another does, 2 none fits, 3 bad input.
	base := []string{"--pod-cidr", "10.0.0.0/12", "--service-cidr", "10.96.0.0/12", "--vpc-cidr", "192.168.0.0/16"}
	if out, _, code := run(append(base, "--nodes", "150")...); code != 0 || !strings.Contains(out, "Recommended: ali-vpc") {
		t.Fatalf("150 nodes: exit %d\n%s", code, out)
	}
	out, _, code := run(append(base, "--nodes", "300", "--backend", "ali-vpc,vxlan", "-o", "json")...)
	if p := decode(out); code != 1 || p.Status != "partial" || p.Recommendation == nil || p.Recommendation.Backend != "vxlan" {
		t.Fatalf("300 nodes, ali-vpc or vxlan: exit %d\n%s", code, out)
	}
	out, _, code = run(append(base, "--nodes", "300", "--backend", "ali-vpc", "-o", "json")...)
	if p := decode(out); code != 2 || p.Status != "fail" || p.Recommendation != nil || p.Backends[0].Errors[0].Code != "NodesOverQuota" {
		t.Fatalf("300 nodes, ali-vpc only: exit %d\n%s", code, out)
	}
	for _, bad := range [][]string{
		{"--pod-cidr", "10.0.0.0/33"},
		{"--node-subnet-len", "33", "--pod-cidr", "10.0.0.0/8"},
		{"--node-subnet-len", "-1", "--pod-cidr", "10.0.0.0/8"},
		{"--nodes", "4611686018427387905", "--pod-cidr", "10.0.0.0/8"},
		{"--net-conf", "/dev/zero"},
		{"--route-table-quota", "1500"},
		{"--instance-type", "ecs.nope.large"},
		{"--backend", "udp"},
		{"-o", "yaml"},
	} {
		out, errOut, code := run(bad...)
		if code != 3 || out != "" || !strings.Contains(errOut, strings.TrimPrefix(bad[0], "-")) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 3 and the flag named", bad, code, out, errOut)
		}
	}
	if out, errOut, code := run("-h"); code != 0 || out != "" || !strings.Contains(errOut, "-pod-cidr") {
		t.Errorf("-h: exit %d, stdout %q; want the usage on stderr and exit 0", code, out)
	}
	// Pod CIDRs, subnet lengths and the backend can come from an existing net-conf.json.
	nc := filepath.Join(t.TempDir(), "net-conf.json")
	if err := os.WriteFile(nc, []byte(`{"Network":"172.16.0.0/20","SubnetLen":25,"Backend":{"Type":"host-gw"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, code = run("--net-conf", nc, "--l2-adjacent", "-o", "json")
	if p := decode(out); code != 0 || len(p.Backends) != 1 || p.Backends[0].Backend != "host-gw" || p.Backends[0].NodesPerCluster != 32 || p.Backends[0].PodsPerNode != 125 {
		t.Fatalf("net-conf: exit %d\n%s", code, out)
	}
}
