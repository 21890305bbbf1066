package main

import (
	"math"
	"testing"
	"time"
)

const scrape = `# HELP weft_eni_allocation_seconds Time from a CNI ADD reaching weftd to its address, checkpointed.
# TYPE weft_eni_allocation_seconds histogram
weft_eni_allocation_seconds_bucket{le="0.001"} 2
weft_eni_allocation_seconds_bucket{le="0.002"} 6
weft_eni_allocation_seconds_bucket{le="0.004"} 10
weft_eni_allocation_seconds_bucket{le="+Inf"} 10
weft_eni_allocation_seconds_sum 0.025
weft_eni_allocation_seconds_count 10
weft_eni_addresses{state="idle"} 5
weft_eni_cloud_writes_total{action="AssignPrivateIpAddresses"} 3
weft_eni_cloud_writes_total{action="CreateNetworkInterface"} 1
`

func TestParseProm(t *testing.T) {
	m := parseProm(scrape)
	if got := m.get("weft_eni_addresses", "state", "idle"); got != 5 {
		t.Errorf("idle = %v, want 5", got)
	}
	w := agentWrites(m)
	if w["AssignPrivateIpAddresses"] != 3 || w["CreateNetworkInterface"] != 1 || len(w) != 2 {
		t.Errorf("writes = %v", w)
	}
	h := m.histogram("weft_eni_allocation_seconds")
	if len(h.buckets) != 4 || !math.IsInf(h.buckets[3].le, 1) || h.count != 10 || h.sum != 0.025 {
		t.Fatalf("histogram = %+v", h)
	}
}

func TestQuantile(t *testing.T) {
	h := parseProm(scrape).histogram("weft_eni_allocation_seconds")
	// rank 5 of 10 falls in (0.001, 0.002] holding ranks 3..6: 0.001 + 0.001*(5-2)/4.
	if got := h.quantile(0.5); math.Abs(got-0.00175) > 1e-12 {
		t.Errorf("p50 = %v, want 0.00175", got)
	}
	if got := h.quantile(0.99); math.Abs(got-(0.002+0.002*(9.9-6)/4)) > 1e-12 {
		t.Errorf("p99 = %v", got)
	}
	// The difference of two scrapes and the sum of two processes.
	d := h.sub(h)
	if d.count != 0 || !math.IsNaN(d.quantile(0.5)) {
		t.Errorf("h - h = %+v", d)
	}
	earlier := hist{buckets: []bucket{{0.001, 1}, {0.002, 2}, {0.004, 2}, {math.Inf(1), 2}}, count: 2, sum: 0.002}
	d = h.sub(earlier)
	if d.count != 8 || d.buckets[0].count != 1 || d.buckets[1].count != 4 || d.buckets[2].count != 8 || d.quantile(0.5) != 0.002 {
		t.Errorf("h - earlier = %+v (p50 %v)", d, d.quantile(0.5))
	}
	s := h.add(h)
	if s.count != 20 || s.buckets[1].count != 12 || math.Abs(s.quantile(0.5)-h.quantile(0.5)) > 1e-12 {
		t.Errorf("h + h = %+v", s)
	}
	// All in +Inf: the highest finite bound.
	inf := hist{buckets: []bucket{{0.001, 0}, {math.Inf(1), 4}}, count: 4}
	if got := inf.quantile(0.5); got != 0.001 {
		t.Errorf("+Inf quantile = %v, want 0.001", got)
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for q, want := range map[float64]time.Duration{0.5: 50 * time.Millisecond, 0.99: 99 * time.Millisecond, 1: 100 * time.Millisecond} {
		if got := percentile(ds, q); got != want {
			t.Errorf("p%v = %v, want %v", q*100, got, want)
		}
	}
	if percentile(nil, 0.5) != 0 {
		t.Error("percentile of nothing")
	}
}

func TestCounts(t *testing.T) {
	a := counts{"x": 3, "y": 1}
	b := counts{"x": 1, "z": 2}
	if d := a.minus(b); d["x"] != 2 || d["y"] != 1 || d["z"] != -2 {
		t.Errorf("a - b = %v", d)
	}
	if s := a.plus(b).scaled(0.5); s["x"] != 2 || s["z"] != 1 {
		t.Errorf("(a + b) / 2 = %v", s)
	}
}
