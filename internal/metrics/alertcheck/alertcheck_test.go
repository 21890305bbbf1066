package alertcheck

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestProblems(t *testing.T) {
	doc := []byte(`groups:
- name: other
  rules:
  - alert: NotMine
    expr: weft_nothing > 0
- name: g
  rules:
  - alert: Good
    expr: max by (instance, state) (weft_x{state="idle"}) == 0
    labels: {severity: warning}
  - alert: BadSeries
    expr: weft_y > 0
    labels: {severity: critical}
  - alert: BadLabel
    expr: sum by (table) (weft_x{zone!="a"}) > 0
    labels: {severity: warning}
  - alert: BadSeverity
    expr: weft_x > 0
    labels: {severity: page}
`)
	rules, err := Rules(doc, "g")
	if err != nil || len(rules) != 4 {
		t.Fatalf("rules %v %v", rules, err)
	}
	if _, err := Rules(doc, "missing"); err == nil {
		t.Fatal("a missing group must be an error")
	}
	reg := prometheus.NewRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "weft_x", Help: "x"}, []string{"state"})
	reg.MustRegister(g)
	g.WithLabelValues("idle").Set(1)
	probs, err := Problems(rules, reg)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(probs, "\n")
	for _, want := range []string{"BadSeries uses weft_y", "BadLabel uses label table", "BadLabel uses label zone", `BadSeverity: severity "page"`} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "Good") || len(probs) != 4 {
		t.Errorf("problems %d, want exactly the 4 bad ones:\n%s", len(probs), got)
	}
}
