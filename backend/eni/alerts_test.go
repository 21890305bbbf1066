package eni

import (
	"os"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weftnet/weft/internal/eni/pool"
	"github.com/weftnet/weft/internal/metrics/alertcheck"
)

// The eni alert rules in dist/ (group "weft-eni") must only use series and labels this backend exports.
func TestAlertRulesUseExportedSeries(t *testing.T) {
	b, err := os.ReadFile("../../dist/prometheus/weft-alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := alertcheck.Rules(b, "weft-eni")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)
	m.setPool(pool.Stats{Idle: 1, Assigned: 2, Capacity: 4})
	m.calls.WithLabelValues("CreateNetworkInterface").Inc()
	m.errors.WithLabelValues("CreateNetworkInterface").Inc()
	m.gcReleased.Inc()
	probs, err := alertcheck.Problems(rules, reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range probs {
		t.Error(p)
	}
	if len(rules) < 4 {
		t.Fatalf("%d eni rules", len(rules))
	}
}
