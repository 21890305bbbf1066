// Package alertcheck checks Prometheus alert rules against the series a backend really exports, so a rule in
// dist/prometheus never watches a metric or a label that was renamed or never existed (such a rule stays silent
// for ever, which is worse than no rule). Used by each backend's tests with its own metrics registered.
package alertcheck

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/yaml"
)

// Rule is one alerting rule as dist/prometheus writes it.
type Rule struct {
	Alert, Expr string
	Labels      map[string]string
}

var (
	seriesRE = regexp.MustCompile(`\bweft_[a-z_]+\b`)
	// label names used in matchers ({state="idle"}) and in by/without clauses (by (table, kind)).
	matcherRE = regexp.MustCompile(`([a-z_]+)\s*(=~|!~|!=|=)\s*"`)
	byRE      = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
)

// Rules returns the rules of the named group.
func Rules(doc []byte, group string) ([]Rule, error) {
	var d struct {
		Groups []struct {
			Name  string
			Rules []Rule
		}
	}
	if err := yaml.Unmarshal(doc, &d); err != nil {
		return nil, err
	}
	for _, g := range d.Groups {
		if g.Name == group {
			return g.Rules, nil
		}
	}
	return nil, fmt.Errorf("no rule group %q", group)
}

// Problems lists what in the rules does not match the series gathered from reg (every series the rules use must
// have been given a value, so its labels are known): a series not exported, a label no used series carries, a
// severity other than warning or critical. The scrape's target labels (instance, job) are always there.
func Problems(rules []Rule, reg prometheus.Gatherer) ([]string, error) {
	mfs, err := reg.Gather()
	if err != nil {
		return nil, err
	}
	labels := map[string]map[string]bool{}
	for _, mf := range mfs {
		labels[mf.GetName()] = map[string]bool{}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				labels[mf.GetName()][l.GetName()] = true
			}
		}
	}
	var out []string
	for _, r := range rules {
		if r.Labels["severity"] != "warning" && r.Labels["severity"] != "critical" {
			out = append(out, fmt.Sprintf("%s: severity %q, expected warning or critical", r.Alert, r.Labels["severity"]))
		}
		used := seriesRE.FindAllString(r.Expr, -1)
		if len(used) == 0 {
			out = append(out, fmt.Sprintf("%s: uses no weft_ series", r.Alert))
		}
		for _, s := range used {
			if _, ok := labels[strings.TrimSuffix(s, "_bucket")]; !ok {
				out = append(out, fmt.Sprintf("%s uses %s, which is not exported", r.Alert, s))
			}
		}
		var names []string
		for _, m := range matcherRE.FindAllStringSubmatch(r.Expr, -1) {
			names = append(names, m[1])
		}
		for _, m := range byRE.FindAllStringSubmatch(r.Expr, -1) {
			for _, n := range strings.Split(m[1], ",") {
				names = append(names, strings.TrimSpace(n))
			}
		}
		for _, n := range names {
			if n == "instance" || n == "job" {
				continue // the scrape's target labels, which Prometheus adds to every series
			}
			found := false
			for _, s := range used {
				found = found || labels[strings.TrimSuffix(s, "_bucket")][n]
			}
			if !found {
				out = append(out, fmt.Sprintf("%s uses label %s, which none of its series has", r.Alert, n))
			}
		}
	}
	return out, nil
}
