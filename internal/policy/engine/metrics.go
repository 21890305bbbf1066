package engine

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/knftables"
)

// CounterKernel is a Kernel that can read named counters (knftables.Interface and its Fake can).
type CounterKernel interface {
	ListCounters(ctx context.Context) ([]*knftables.Counter, error)
}

var (
	deniedDesc = prometheus.NewDesc("weft_network_policy_denied_packets_total",
		"Packets a NetworkPolicy's isolation dropped on this node, by the policy's namespace and name and the direction (a packet an isolated pod's policies all refuse counts for each of them).",
		[]string{"namespace", "policy", "direction"}, nil)
	problemsDesc = prometheus.NewDesc("weft_network_policy_problems",
		"What this node cannot enforce now: policies that do not compile, SCTP ports, a failing sync (weftd's log names them).", nil, nil)
	syncedDesc = prometheus.NewDesc("weft_network_policy_synced",
		"1 when the kernel holds the latest state of the pods, namespaces and policies, else 0.", nil, nil)
)

// Describe implements prometheus.Collector.
func (e *Engine) Describe(ch chan<- *prometheus.Desc) {
	ch <- deniedDesc
	ch <- problemsDesc
	ch <- syncedDesc
}

// Collect implements prometheus.Collector: the deny counters read from the kernel at scrape time (bounded: one
// series per policy and direction that isolates a pod of this node).
func (e *Engine) Collect(ch chan<- prometheus.Metric) {
	e.mu.Lock()
	rs, synced := e.applied, e.synced == e.gen && e.syncErr == nil
	e.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(problemsDesc, prometheus.GaugeValue, float64(len(e.Problems())))
	ch <- prometheus.MustNewConstMetric(syncedDesc, prometheus.GaugeValue, b2f(synced))
	ck, ok := e.kernel.(CounterKernel)
	if !ok || rs == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cs, err := ck.ListCounters(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(deniedDesc, err)
		return
	}
	for _, c := range cs {
		if c == nil {
			continue
		}
		who, ok := rs.Counters[c.Name]
		if !ok || c.Packets == nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(deniedDesc, prometheus.CounterValue, float64(*c.Packets), who.Namespace, who.Policy, who.Direction)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
