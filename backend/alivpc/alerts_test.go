package alivpc

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/yaml"
)

// The alert rules in dist/ must only use series and labels the backend exports.
func TestAlertRulesUseExportedSeries(t *testing.T) {
	b, err := os.ReadFile("../../dist/prometheus/weft-alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Groups []struct {
			Rules []struct {
				Alert, Expr string
				Labels      map[string]string
			}
		}
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := newRouteMetrics(reg)
	m.set(Result{Tables: []TableUsage{{ID: "vtb-1", Custom: 3, Owned: 2}}, Nodes: map[string]NodeState{"n": {Reason: ReasonQuota}}}, 4)
	m.leader.Set(1)
	mfs, _ := reg.Gather()
	labels := map[string]map[string]bool{}
	for _, mf := range mfs {
		labels[mf.GetName()] = map[string]bool{}
		for _, x := range mf.GetMetric() {
			for _, l := range x.GetLabel() {
				labels[mf.GetName()][l.GetName()] = true
			}
		}
	}
	series := regexp.MustCompile(`weft_[a-z_]+`)
	n := 0
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			n++
			if r.Labels["severity"] != "warning" && r.Labels["severity"] != "critical" {
				t.Errorf("%s: severity %q", r.Alert, r.Labels["severity"])
			}
			for _, s := range series.FindAllString(r.Expr, -1) {
				if _, ok := labels[s]; !ok {
					t.Errorf("%s uses %s, which is not exported", r.Alert, s)
				}
			}
			for _, l := range []string{"table", "kind", "reason"} {
				if strings.Contains(r.Expr, l) {
					found := false
					for _, ls := range labels {
						found = found || ls[l]
					}
					if !found {
						t.Errorf("%s uses label %s, which no series has", r.Alert, l)
					}
				}
			}
		}
	}
	if n < 3 {
		t.Fatalf("%d rules", n)
	}
	if !strings.Contains(string(b), ">= 0.80") || !strings.Contains(string(b), ">= 0.95") {
		t.Error("thresholds must be 80 % (warning) and 95 % (critical)")
	}
}
