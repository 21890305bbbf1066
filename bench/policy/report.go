package main

// The report: the machine and its load, then the tables of the two measurements, as text.

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"
)

func report(o options, started time.Time, load0, load1 string, s *scaleResult, d *datapathResult) string {
	var w strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&w, format, args...) }
	p("weft NetworkPolicy engine: real weftd (Kubernetes mode, vxlan, policy on by default) in a lab node namespace,\n")
	p("real kube-apiserver + etcd, weftd as dist/rbac.yaml's ServiceAccount\n")
	p("command: %s\n", strings.Join(os.Args, " "))
	p("machine: %s\n", machine())
	p("run: %s, load average %s at the start, %s at the end; the machine was SHARED with other engineers' work\n\n",
		started.Format("2006-01-02 15:04 UTC"), load0, load1)

	p("1. scale: %d pods on the node in %d namespaces, %d policies (+1 for the label probes)\n", o.pods, o.namespaces, o.policies)
	p("   bulk load: first object written -> the table holds what ruleset.Render says (chains, sets, map elements,\n")
	p("   counters; polled every 1 s): %.1f s; weftd CPU until the table was stable %.1f s\n", s.load.Seconds(), s.loadCPU.Seconds())
	t := s.table
	p("   table inet weft-policy at scale: %d chains, %d rules, %d sets with %d elements, %d maps with %d elements, %d counters\n\n",
		t.chains, t.rules, t.sets, t.setElems, t.maps, t.mapElems, t.counters)
	p("   change -> in the kernel (ms)        n      p50      p90      p99      max\n")
	for _, pr := range s.probes {
		p("   %-30s %4d %8s %8s %8s %8s\n", pr.name, len(pr.lat), ms(percentile(pr.lat, 0.5)), ms(percentile(pr.lat, 0.9)),
			ms(percentile(pr.lat, 0.99)), ms(percentile(pr.lat, 1)))
	}
	p("   from the API call's start to the `nft monitor` line that shows it (read as it is printed, in the node\n")
	p("   namespace): create/update: a rule with the change's own port; delete: the policy's deny counter going;\n")
	p("   label: the pod's element in map ingress4 added (flip=on, selected by one policy) or deleted (flip=off);\n")
	p("   new pod: Pod create + status (podIP) -> its ingress4 element; pod delete -> the element gone.\n")
	p("   One change at a time, %s apart; nearest-rank percentiles. weftd gathers changes for 20 ms before a sync.\n\n", o.gap)
	p("   weftd                               CPU %%     CPU s     wall s    VmRSS MiB\n")
	p("   idle, no objects                   %6.2f  %8.2f  %9.1f    %9.1f\n", s.idle0.percent(), s.idle0.cpu.Seconds(), s.idle0.wall.Seconds(), mib(s.rss0))
	p("   idle at scale                      %6.2f  %8.2f  %9.1f    %9.1f\n", s.idle1.percent(), s.idle1.cpu.Seconds(), s.idle1.wall.Seconds(), mib(s.rss1))
	lu := usage{cpu: s.loadCPU, wall: s.load}
	p("   bulk load                          %6.2f  %8.2f  %9.1f\n", lu.percent(), lu.cpu.Seconds(), lu.wall.Seconds())
	pu := usage{cpu: s.probeCPU, wall: s.probeAll}
	n := 0
	for _, pr := range s.probes {
		n += len(pr.lat)
	}
	p("   the %4d changes                   %6.2f  %8.2f  %9.1f    %9.1f   (%.1f ms CPU per change)\n", n, pu.percent(), pu.cpu.Seconds(),
		pu.wall.Seconds(), mib(s.rss2), 1000*pu.cpu.Seconds()/float64(max(n, 1)))
	p("   CPU %% is of one CPU (utime+stime of /proc/<pid>/stat over the window); VmRSS at the window's end.\n\n")

	p("2. datapath: client pod -> server pod through the node namespace (veths, /32 routes), %d policies isolating the\n", o.dpPolicies)
	p("   server (each admits the client among other peers) vs none, the %d pods and %d policies above in place;\n", o.pods, o.policies)
	p("   %d alternating reps x %d s, server CPU 0, client CPU 1; server's ingress chain with the policies: %d rules\n",
		len(d.offGbps), o.secs, d.chainRules)
	p("   %-32s %12s %14s %26s\n", "", "no policy", "policies", "policies/none (min..max)")
	row := func(name string, off, on []float64, f string) {
		var rs []float64
		for i := range off {
			if off[i] > 0 && i < len(on) {
				rs = append(rs, on[i]/off[i])
			}
		}
		lo, hi := minMax(rs)
		span := func(xs []float64) string { a, b := minMax(xs); return fmt.Sprintf(f+".."+f, a, b) }
		p("   %-32s %12s %14s %26s\n", name, fmt.Sprintf(f, median(off)), fmt.Sprintf(f, median(on)), fmt.Sprintf("%.3f (%.3f..%.3f)", median(rs), lo, hi))
		p("   %-32s %12s %14s\n", "  min..max", span(off), span(on))
	}
	row("TCP throughput Gbit/s (iperf3)", d.offGbps, d.onGbps, "%.2f")
	row("TCP RR/s (sockperf ping-pong)", d.offRR, d.onRR, "%.0f")
	p("   medians; each ratio is taken per rep (a run with the policies next to one without). Both tools keep one\n")
	p("   connection: after its SYN, every packet is accepted by the forward chain's first rule (ct established),\n")
	p("   so these figures are the per-packet cost of the hook and conntrack, not of the policy rules.\n")
	p("   switching the policies (server label -> ingress4 element), ms: on p50 %s max %s, off p50 %s max %s\n",
		ms(percentile(d.switchOn, 0.5)), ms(percentile(d.switchOn, 1)), ms(percentile(d.switchOff, 0.5)), ms(percentile(d.switchOff, 1)))
	return w.String()
}

func mib(kb int) float64 { return float64(kb) / 1024 }

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }

// percentile is the nearest-rank q-quantile (q = 1: the maximum); 0 for none.
func percentile(xs []time.Duration, q float64) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), xs...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	k := int(q*float64(len(s))+0.999999) - 1
	return s[min(max(k, 0), len(s)-1)]
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func minMax(xs []float64) (float64, float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	lo, hi := xs[0], xs[0]
	for _, x := range xs {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}

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

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
