package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/weftnet/weft/internal/plan"
)

// FuzzPlanFlags: any command line gives weft plan's answer or bad input, never a panic or a hang, and its
// JSON output always decodes with counts in range. Lines that would reach the cloud API or read a file are
// left to TestPlanCommand.
func FuzzPlanFlags(f *testing.F) {
	for _, s := range []string{
		"--pod-cidr 10.244.0.0/16 --nodes 100 -o json",
		"--pod-cidr 10.0.0.0/8,fd00::/48 --ipv6-node-subnet-len 64 --vpc-cidr 192.168.0.0/16 --nodes 4611686018427387905 -o json",
		"--pod-cidr 10.0.0.0/8 --node-subnet-len 33",
		"--pod-cidr 10.0.0.0/8 --node-subnet-len -1 --subnet-manager etcd",
		"--vpc-cidr 192.168.0.0/16 --vswitch-cidr 192.168.0.0/24 --instance-type ecs.c7.4xlarge --backend eni -o json",
		"--route-table-quota 99999999999999999999 --route-entries-used -1",
		"--pod-cidr=10.0.0.0/8 --nodes=9007199254740991 --max-pods=1 --l2-adjacent -o json",
		"-h", "--bogus", "extra",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if strings.Contains(line, "source") || strings.Contains(line, "net-conf") || strings.Contains(line, "region") {
			return
		}
		args := strings.Fields(line)
		var out strings.Builder
		err := planRun(context.Background(), args, &out, io.Discard)
		var ee exitError
		if err != nil && errors.As(err, &ee) && (ee.code < 1 || ee.code > 3) {
			t.Fatalf("%q: exit %d", line, ee.code)
		}
		if err != nil && !errors.As(err, &ee) {
			return // printed as bad input, exit 3
		}
		if !strings.HasPrefix(strings.TrimSpace(out.String()), "{") {
			return
		}
		var p plan.Plan
		if jerr := json.Unmarshal([]byte(out.String()), &p); jerr != nil {
			t.Fatalf("%q: JSON output does not decode: %v", line, jerr)
		}
		for _, r := range p.Backends {
			if r.PodsPerNode < 0 || r.NodesPerCluster < 0 || r.PodsPerCluster < 0 || r.PodsPerCluster > plan.MaxCount {
				t.Fatalf("%q: %+v", line, r)
			}
		}
	})
}
