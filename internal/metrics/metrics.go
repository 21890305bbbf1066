// Package metrics defines weftd's Prometheus metrics. Everything is registered on a Registerer passed in (never
// the global one), names share the "weft_" prefix, and label values are bounded enums (backend names, event
// types, outcome classes), never error strings.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/weftnet/weft/internal/version"
)

// Daemon holds weftd's metrics. It implements backend.Hooks.
type Daemon struct {
	leaseEvents     *prometheus.CounterVec
	reconcileTime   *prometheus.HistogramVec
	reconcileErrors *prometheus.CounterVec
	leaseAcquired   *prometheus.CounterVec
	ready           prometheus.Gauge
}

// New registers weftd's metrics (plus the Go and process collectors) on reg.
func New(reg prometheus.Registerer, subnetManager string) *Daemon {
	d := &Daemon{
		leaseEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_lease_events_total",
			Help: "Lease events received from the subnet manager, by type (added, removed).",
		}, []string{"type"}),
		reconcileTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "weft_reconcile_duration_seconds",
			Help:    "Time taken by one backend reconcile pass.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"backend"}),
		reconcileErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_reconcile_errors_total",
			Help: "Backend reconcile passes that ended with an error.",
		}, []string{"backend"}),
		leaseAcquired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_lease_acquisitions_total",
			Help: "Times this node acquired or re-acquired its lease, by subnet manager.",
		}, []string{"manager"}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "weft_ready",
			Help: "1 when the node's network is set up and subnet.env written (as /readyz), else 0.",
		}),
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "weft_build_info",
		Help: "Build information; the value is always 1.",
	}, []string{"version", "goversion", "subnet_manager"})
	build.WithLabelValues(version.Version, version.GoVersion, subnetManager).Set(1)
	reg.MustRegister(d.leaseEvents, d.reconcileTime, d.reconcileErrors, d.leaseAcquired, d.ready, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return d
}

// Reconciled records one reconcile pass of a backend.
func (d *Daemon) Reconciled(backend string, seconds float64, err error) {
	d.reconcileTime.WithLabelValues(backend).Observe(seconds)
	if err != nil {
		d.reconcileErrors.WithLabelValues(backend).Inc()
	} else {
		d.reconcileErrors.WithLabelValues(backend).Add(0)
	}
}

// LeaseEvent counts one lease event ("added" or "removed").
func (d *Daemon) LeaseEvent(typ string) { d.leaseEvents.WithLabelValues(typ).Inc() }

// LeaseAcquired counts an acquisition of this node's lease.
func (d *Daemon) LeaseAcquired(manager string) { d.leaseAcquired.WithLabelValues(manager).Inc() }

// SetReady mirrors /readyz.
func (d *Daemon) SetReady(ok bool) {
	if ok {
		d.ready.Set(1)
	} else {
		d.ready.Set(0)
	}
}
