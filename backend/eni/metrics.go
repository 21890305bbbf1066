package eni

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/weftnet/weft/internal/eni/pool"
)

// metrics are the eni backend's: the pool's figures, allocation latency, cloud calls and GC.
type metrics struct {
	pool         *prometheus.GaugeVec // state
	allocSeconds prometheus.Histogram
	calls        *prometheus.CounterVec // action
	errors       *prometheus.CounterVec // action
	gcReleased   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		pool: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "weft_eni_addresses",
			Help: "Pod addresses of this node's ENIs by state: idle, assigned, cooldown, quarantined, releasing, waiting (pods), capacity."}, []string{"state"}),
		allocSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "weft_eni_allocation_seconds",
			Help: "Time from a CNI ADD reaching weftd to its address, checkpointed.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18)}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_eni_cloud_writes_total",
			Help: "ECS writes made by the eni agent, by action."}, []string{"action"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_eni_cloud_errors_total",
			Help: "Failed ECS calls of the eni agent, by action."}, []string{"action"}),
		gcReleased: prometheus.NewCounter(prometheus.CounterOpts{Name: "weft_eni_gc_released_total",
			Help: "Addresses released because their pod was gone without a DEL."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.pool, m.allocSeconds, m.calls, m.errors, m.gcReleased} {
			reg.MustRegister(c)
		}
	}
	return m
}

func (m *metrics) setPool(s pool.Stats) {
	for k, v := range map[string]int{"idle": s.Idle, "assigned": s.Assigned, "cooldown": s.Cooldown, "quarantined": s.Quarantined, "reserved": s.Reserved,
		"releasing": s.Releasing, "waiting": s.Waiting, "capacity": s.Capacity} {
		m.pool.WithLabelValues(k).Set(float64(v))
	}
}
