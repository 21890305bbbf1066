package main

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// prom is a scrape of the Prometheus text format: series (name plus sorted labels, as written) -> value.
type prom map[string]float64

var promLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)`)

// parseProm reads the samples of the text exposition format (comments and unparsable lines are skipped).
func parseProm(body string) prom {
	out := prom{}
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		m := promLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			continue
		}
		out[m[1]+m[2]] = v
	}
	return out
}

// get returns the value of name{label="value"} (0 when absent).
func (p prom) get(name, label, value string) float64 {
	if label == "" {
		return p[name]
	}
	return p[fmt.Sprintf(`%s{%s=%q}`, name, label, value)]
}

// labelValues returns value -> sample of every series name{label="..."}.
func (p prom) labelValues(name, label string) map[string]float64 {
	out := map[string]float64{}
	pre := name + "{" + label + `="`
	for k, v := range p {
		if strings.HasPrefix(k, pre) && strings.HasSuffix(k, `"}`) {
			out[strings.TrimSuffix(strings.TrimPrefix(k, pre), `"}`)] = v
		}
	}
	return out
}

// bucket is one cumulative histogram bucket.
type bucket struct {
	le    float64
	count float64
}

// hist is a histogram's buckets (ascending le, +Inf last), count and sum.
type hist struct {
	buckets    []bucket
	count, sum float64
}

func (p prom) histogram(name string) hist {
	var h hist
	for le, v := range p.labelValues(name+"_bucket", "le") {
		f, err := strconv.ParseFloat(le, 64)
		if err != nil {
			continue
		}
		h.buckets = append(h.buckets, bucket{f, v})
	}
	sort.Slice(h.buckets, func(i, j int) bool { return h.buckets[i].le < h.buckets[j].le })
	h.count, h.sum = p[name+"_count"], p[name+"_sum"]
	return h
}

// sub returns h - o (the observations between two scrapes of one process); o may be empty.
func (h hist) sub(o hist) hist {
	r := hist{count: h.count - o.count, sum: h.sum - o.sum}
	for i, b := range h.buckets {
		c := b.count
		if i < len(o.buckets) && o.buckets[i].le == b.le {
			c -= o.buckets[i].count
		}
		r.buckets = append(r.buckets, bucket{b.le, c})
	}
	return r
}

// add returns h + o (observations of two processes with the same buckets).
func (h hist) add(o hist) hist {
	if len(h.buckets) == 0 {
		return o
	}
	r := hist{count: h.count + o.count, sum: h.sum + o.sum}
	for i, b := range h.buckets {
		c := b.count
		if i < len(o.buckets) && o.buckets[i].le == b.le {
			c += o.buckets[i].count
		}
		r.buckets = append(r.buckets, bucket{b.le, c})
	}
	return r
}

// quantile estimates the q-quantile as Prometheus's histogram_quantile does: linear within the bucket that holds
// it, the lower bound of the first bucket taken as 0, the highest finite bound when it falls in +Inf.
func (h hist) quantile(q float64) float64 {
	if h.count <= 0 || len(h.buckets) == 0 {
		return math.NaN()
	}
	rank := q * h.count
	prevLE, prevCount := 0.0, 0.0
	for _, b := range h.buckets {
		if b.count >= rank {
			if math.IsInf(b.le, 1) {
				return prevLE
			}
			if b.count == prevCount {
				return b.le
			}
			return prevLE + (b.le-prevLE)*(rank-prevCount)/(b.count-prevCount)
		}
		prevLE, prevCount = b.le, b.count
	}
	return prevLE
}

// percentile of durations (nearest rank).
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return math.NaN()
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func minMax(xs []float64) (float64, float64) {
	if len(xs) == 0 {
		return math.NaN(), math.NaN()
	}
	lo, hi := xs[0], xs[0]
	for _, x := range xs {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}

// apiActions are every action alisim serves (cloud/aliyun/sim/rpc.go), so no call goes uncounted.
var apiActions = []string{"DescribeVpcs", "DescribeVSwitches", "DescribeRouteTableList", "DescribeRouteTables", "DescribeRouteEntryList",
	"CreateRouteEntry", "DeleteRouteEntry", "CreateRouteEntries", "DeleteRouteEntries", "DescribeInstances", "DescribeInstanceTypes",
	"CreateNetworkInterface", "AttachNetworkInterface", "DetachNetworkInterface", "DeleteNetworkInterface", "DescribeNetworkInterfaces",
	"AssignPrivateIpAddresses", "UnassignPrivateIpAddresses", "AssignIpv6Addresses", "UnassignIpv6Addresses"}

type counts map[string]float64

func (c counts) minus(o counts) counts {
	r := counts{}
	for k, v := range c {
		if d := v - o[k]; d != 0 {
			r[k] = d
		}
	}
	for k, v := range o {
		if _, ok := c[k]; !ok && v != 0 {
			r[k] = -v
		}
	}
	return r
}

func (c counts) plus(o counts) counts {
	r := counts{}
	for k, v := range c {
		r[k] += v
	}
	for k, v := range o {
		r[k] += v
	}
	return r
}

func (c counts) scaled(f float64) counts {
	r := counts{}
	for k, v := range c {
		r[k] = v * f
	}
	return r
}

// calls snapshots alisim's per-action call counters (every authenticated call, reads and writes, of any caller:
// only the agent under measurement runs while they are compared).
func (e *env) calls() counts {
	c := counts{}
	for _, a := range apiActions {
		c[a] = float64(e.srv.Calls(a))
	}
	return c
}

// audited counts the writes alisim's audit holds for an instance's credentials (the RAM role's STS key) in
// [from, to).
func (e *env) audited(instance string, from, to time.Time) counts {
	ws, _ := e.world.Writes()
	c := counts{}
	for _, w := range ws {
		if w.Instance == instance && !w.At.Before(from) && w.At.Before(to) {
			c[w.Action]++
		}
	}
	return c
}

// agentWrites is the agent's own weft_eni_cloud_writes_total by action.
func agentWrites(m prom) counts {
	c := counts{}
	for a, v := range m.labelValues("weft_eni_cloud_writes_total", "action") {
		c[a] = v
	}
	return c
}

// serve is the netperf.Starter of this run: the server is tracked, so an interrupt stops it too.
func (e *env) serve(ns string, argv ...string) (func(), error) {
	c, err := e.startServer(ns, argv...)
	if err != nil {
		return nil, err
	}
	return func() { e.stopServer(c) }, nil
}
