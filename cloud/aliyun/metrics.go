package aliyun

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// clientMetrics are the cloud API series. Every client on one Registerer shares one set: the first client
// registers the collectors and later ones (a retried RegisterNetwork, a second client in the same process) take
// the registered ones back from prometheus.AlreadyRegisteredError, so their calls add up in the same series.
type clientMetrics struct {
	calls   *prometheus.CounterVec
	latency *prometheus.HistogramVec
	// waits and waitSeconds count the calls the client-side rate limit held back, and for how long.
	waits       *prometheus.CounterVec
	waitSeconds *prometheus.CounterVec
}

func newClientMetrics() *clientMetrics {
	return &clientMetrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_cloud_api_calls_total",
			Help: "Cloud API calls by action and outcome (ok, throttled, refused, server_error, network_error)."}, []string{"action", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "weft_cloud_api_duration_seconds",
			Help: "Cloud API call latency by action.", Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10)}, []string{"action"}),
		waits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_cloud_api_rate_limited_total",
			Help: "Cloud API call attempts the client-side rate limit made wait, by action."}, []string{"action"}),
		waitSeconds: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_cloud_api_rate_limit_wait_seconds_total",
			Help: "Time cloud API call attempts were to wait for the client-side rate limit, by action."}, []string{"action"}),
	}
}

// metricsFor returns the collectors registered on reg, registering them the first time (unregistered ones
// when reg is nil).
func metricsFor(reg prometheus.Registerer) (*clientMetrics, error) {
	m := newClientMetrics()
	if reg == nil {
		return m, nil
	}
	var err error
	if m.calls, err = registerOnce(reg, m.calls); err != nil {
		return nil, err
	}
	if m.latency, err = registerOnce(reg, m.latency); err != nil {
		return nil, err
	}
	if m.waits, err = registerOnce(reg, m.waits); err != nil {
		return nil, err
	}
	if m.waitSeconds, err = registerOnce(reg, m.waitSeconds); err != nil {
		return nil, err
	}
	return m, nil
}

// registerOnce registers c, or returns the collector of the same description already registered.
func registerOnce[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
		return c, fmt.Errorf("aliyun: metrics: another collector of a different kind is registered as %T", are.ExistingCollector)
	}
	return c, fmt.Errorf("aliyun: metrics: %w", err)
}

func (m *clientMetrics) observe(action, outcome string, d time.Duration) {
	m.latency.WithLabelValues(action).Observe(d.Seconds())
	m.calls.WithLabelValues(action, outcome).Inc()
}

func (m *clientMetrics) waited(action string, d time.Duration) {
	m.waits.WithLabelValues(action).Inc()
	m.waitSeconds.WithLabelValues(action).Add(d.Seconds())
}
