package alivpc

import (
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weftnet/weft/internal/metrics/alertcheck"
)

// The route-table alert rules in dist/ (group "weft") must only use series and labels the backend exports.
func TestAlertRulesUseExportedSeries(t *testing.T) {
	b, err := os.ReadFile("../../dist/prometheus/weft-alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := alertcheck.Rules(b, "weft")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := newRouteMetrics(reg)
	m.set(Result{Tables: []TableUsage{{ID: "vtb-1", Custom: 3, Owned: 2}}, Nodes: map[string]NodeState{"n": {Reason: ReasonQuota}}}, 4)
	m.leader.Set(1)
	probs, err := alertcheck.Problems(rules, reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range probs {
		t.Error(p)
	}
	if len(rules) < 3 {
		t.Fatalf("%d rules", len(rules))
	}
	if !strings.Contains(string(b), ">= 0.80") || !strings.Contains(string(b), ">= 0.95") {
		t.Error("thresholds must be 80 % (warning) and 95 % (critical)")
	}
}
