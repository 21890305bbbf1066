package main

// The report: the machine and its load, and the tables of the measurements, as text.

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/weftnet/weft/cloud/aliyun/sim"
)

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func machine() string {
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	model := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				if i := strings.Index(l, ":"); i >= 0 {
					model = strings.TrimSpace(l[i+1:])
				}
				break
			}
		}
	}
	return fmt.Sprintf("nproc %d, kernel %s, %s, %s", runtime.NumCPU(), strings.TrimSpace(string(kernel)), model, runtime.Version())
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }

func msf(sec float64) string {
	if math.IsNaN(sec) {
		return "-"
	}
	return fmt.Sprintf("%.1f", sec*1000)
}

// hq is a histogram quantile in ms, marked ">" when it lies beyond the highest finite bucket.
func hq(h hist, q float64) string {
	v := h.quantile(q)
	if n := len(h.buckets); n >= 2 && math.IsInf(h.buckets[n-1].le, 1) && h.buckets[n-2].count < q*h.count {
		return ">" + msf(v)
	}
	return msf(v)
}

func report(o options, started time.Time, load0, load1 string, ss []*scenario, tr *traffic, a, b *node) string {
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format, args...) }
	p("weft eni backend on alisim's fabric (sim.DefaultTiming: ENI attach %s; instance metadata lag %s, its default), %s nodes\n",
		sim.DefaultTiming.ENITransition, sim.NewMetadata(nil, "").Lag, benchType)
	p("command: %s\n", strings.Join(os.Args, " "))
	p("machine: %s\n", machine())
	p("run: %s, load average %s at the start, %s at the end; the machine was SHARED with other engineers' e2e tests\n\n",
		started.Format("2006-01-02 15:04 UTC"), load0, load1)

	p("1-2. pod address allocation (ms)      n   ADD p50   ADD p99   ADD max | weftd p50  weftd p99  weftd mean\n")
	for _, s := range ss {
		p("%-34s %5d %9s %9s %9s | %9s  %9s  %9s\n", s.name, len(s.adds), ms(percentile(s.adds, 0.5)), ms(percentile(s.adds, 0.99)),
			ms(percentile(s.adds, 1)), hq(s.weftd, 0.5), hq(s.weftd, 0.99), msf(s.weftd.sum/s.weftd.count))
	}
	p("  ADD: CNI ADD through libcni and weft-eni, as the runtime sees it (nearest-rank percentiles).\n")
	p("  weftd: weft_eni_allocation_seconds from /metrics (ADD reaching weftd -> address checkpointed), p50/p99\n")
	p("  interpolated within its buckets (x2 apart from 0.5 ms to 65.5 s; \">\": beyond the last) as histogram_quantile\n")
	p("  does; mean = _sum/_count.\n")
	for _, s := range ss {
		if s.wall > 0 {
			p("  %s: wall time first ADD sent -> last answer %s ms; per pod p50 %s, p90 %s, p99 %s, max %s ms; %d ENIs after; %d ADDs failed\n",
				s.name, ms(s.wall), ms(percentile(s.adds, 0.5)), ms(percentile(s.adds, 0.9)), ms(percentile(s.adds, 0.99)),
				ms(percentile(s.adds, 1)), s.enis, s.failures)
			if s.firstErr != "" {
				p("    first failure: %s\n", s.firstErr)
			}
			p("    its ENIs, times from the first ADD sent (alisim's audit and state; answers as the runtime saw them):\n")
			for _, l := range s.timeline {
				p("      %s\n", l)
			}
		}
	}
	for _, s := range ss {
		if len(s.start) > 0 {
			p("  %s: weftd start -> CNI socket served p50 %s ms (n %d); pool at its target afterwards on %d of %d nodes\n",
				s.name, ms(percentile(s.start, 0.5)), len(s.start), s.settled, s.nodes)
		}
	}
	p("  pools: warm %s; cold and fresh %s\n", warmPool, coldPool)
	p("  warm: one ADD, then DEL, every %s (the 30 s cooldown never starves the pool); node A holds %d ENI(s) after\n\n", o.warmGap, ss[0].enis)

	p("3. API calls by action, alisim counters / alisim write audit (node's STS key) / weft_eni_cloud_writes_total\n")
	p("   window: from the (first) ADD until the pool is back at its target (warm: until the last DEL)\n")
	var acts []string
	seen := map[string]bool{}
	for _, s := range ss {
		for _, c := range []counts{s.api, s.startup} {
			for k := range c {
				if !seen[k] {
					seen[k] = true
					acts = append(acts, k)
				}
			}
		}
	}
	sort.Strings(acts)
	p("%-28s", "action")
	for _, s := range ss {
		p(" %22s", s.short)
	}
	p(" %18s\n", "start-up (cold)")
	for _, act := range acts {
		p("%-28s", act)
		for _, s := range ss {
			f := 1 / s.per
			cell := num(s.api[act] * f)
			if writes[act] {
				cell += " / " + num(s.audit[act]*f) + " / " + num(s.agent[act]*f)
			}
			p(" %22s", cell)
		}
		cs := ss[1]
		p(" %18s\n", num(cs.startup[act]/cs.per))
	}
	p("  (reads have no audit and no agent counter; start-up: weftd start -> CNI socket, per cold node)\n\n")

	p("4. traffic A (%s, %s) -> B (%s, %s) through the fabric, %d interleaved reps x %d s, server CPU 0, client CPU 1;\n",
		a.zone, a.ip, b.zone, b.ip, len(tr.nodeGbps), o.secs)
	p("   exclusive: pods on whole ENIs of XA (zone h) -> XB (zone i), the same path through the fabric\n")
	p("%-32s %12s %12s %12s %24s %24s\n", "", "node->node", "shared pod", "excl. pod", "shared/node (min..max)", "excl./node (min..max)")
	row := func(name string, node, pod, excl []float64, f string) {
		ratio := func(xs []float64) string {
			var rs []float64
			for i := range node {
				if node[i] > 0 && i < len(xs) {
					rs = append(rs, xs[i]/node[i])
				}
			}
			lo, hi := minMax(rs)
			return fmt.Sprintf("%.3f (%.3f..%.3f)", median(rs), lo, hi)
		}
		span := func(xs []float64) string { lo, hi := minMax(xs); return fmt.Sprintf(f+".."+f, lo, hi) }
		p("%-32s %12s %12s %12s %24s %24s\n", name, fmt.Sprintf(f, median(node)), fmt.Sprintf(f, median(pod)), fmt.Sprintf(f, median(excl)),
			ratio(pod), ratio(excl))
		p("%-32s %12s %12s %12s\n", "  min..max", span(node), span(pod), span(excl))
	}
	row("TCP throughput Gbit/s (iperf3)", tr.nodeGbps, tr.podGbps, tr.exclGbps, "%.2f")
	row("TCP RR/s (sockperf ping-pong)", tr.nodeRR, tr.podRR, tr.exclRR, "%.0f")
	p("  medians; each ratio is taken per rep (a pod run next to its node run)\n")
	return w.String()
}

var writes = map[string]bool{"CreateNetworkInterface": true, "AttachNetworkInterface": true, "DetachNetworkInterface": true,
	"DeleteNetworkInterface": true, "AssignPrivateIpAddresses": true, "UnassignPrivateIpAddresses": true,
	"AssignIpv6Addresses": true, "UnassignIpv6Addresses": true, "CreateRouteEntry": true, "DeleteRouteEntry": true,
	"CreateRouteEntries": true, "DeleteRouteEntries": true}

func num(x float64) string {
	if x == math.Trunc(x) {
		return fmt.Sprintf("%.0f", x)
	}
	return fmt.Sprintf("%.2f", x)
}
