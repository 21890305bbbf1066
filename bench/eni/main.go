// Command eni measures weft's eni backend (pods on secondary addresses of shared ENIs) end to end on alisim's
// fabric, in one run: weftd (eni) on fabric instances under dist/kube-weft-eni.yaml's RBAC with a real
// kube-apiserver, pods made through the real weft-eni plugin by a libcni runtime (internal/lab.Runtime), alisim
// with its default delays (sim.DefaultTiming: ENIs take 2 s to attach; instance metadata trails the API by its
// default 1 s). It reports:
//
//  1. pod address allocation latency, p50 and p99, as the runtime sees CNI ADD and as weftd's
//     weft_eni_allocation_seconds histogram says: from a warm pool (weft's default pool settings), and on a cold
//     node (fresh weftd, min_pool_size 0, so the first pod's ADD waits for an ENI to be created and attached);
//  2. -pods pods started at once on a fresh node until every one has its address (wall time, per-pod latency);
//  3. the API calls of each of those, by action: alisim's counters, alisim's write audit for the node's
//     credentials, and the agent's weft_eni_cloud_writes_total;
//  4. pod-to-pod TCP throughput (iperf3) and request/response rate (sockperf ping-pong), pod on node A to pod on
//     node B (another zone), and exclusive-ENI pod to exclusive-ENI pod (nodes XA and XB, the same two zones), each
//     as a ratio to node A eth0 -> node B eth0 over the same fabric, runs interleaved (the order rotating per rep),
//     client and server on different CPUs.
//
// One weftd runs at a time while its calls are counted (alisim's counters are global). Everything it makes is
// removed at the end and on SIGINT/SIGTERM.
//
//	make bench-eni        (bin/bench-eni -reps 5 -warm 40 -secs 5 -pods 100 -o bench/eni/RESULTS.md)
//	bin/bench-eni -quick  (a short run)
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/weftnet/weft/bench/netperf"
	"github.com/weftnet/weft/cloud/aliyun/sim"
	"github.com/weftnet/weft/internal/lab"
)

type options struct {
	reps, warm, secs, pods int
	warmGap                time.Duration
	quick                  bool
	out                    string
}

// scenario is what one of the allocation measurements gathered.
type scenario struct {
	name     string
	adds     []time.Duration // as the runtime saw ADD
	weftd    hist            // weft_eni_allocation_seconds over the scenario
	api      counts          // alisim's counters over the scenario
	audit    counts          // alisim's write audit for the node's credentials
	agent    counts          // weft_eni_cloud_writes_total delta
	startup  counts          // alisim's counters from weftd's start to its CNI socket (cold and -pods nodes)
	start    []time.Duration // weftd start -> CNI socket
	wall     time.Duration   // -pods: first ADD sent -> last address
	per      float64         // counts are divided by this (per ADD, per node)
	enis     int             // ENIs the node(s) ended with (mean over nodes)
	settled  int             // nodes whose pool reached its target afterwards
	nodes    int
	failures int
	firstErr string
	timeline []string // -pods: each ENI's creation, InUse and first pod served, from the first ADD
	short    string   // column heading
}

type traffic struct{ nodeGbps, podGbps, exclGbps, nodeRR, podRR, exclRR []float64 }

func main() {
	var o options
	flag.IntVar(&o.reps, "reps", 5, "cold nodes (one ADD each) and interleaved traffic repetitions")
	flag.IntVar(&o.warm, "warm", 40, "ADDs from the warm pool (each followed by DEL)")
	flag.DurationVar(&o.warmGap, "warm-gap", 1500*time.Millisecond, "pause between warm ADDs (30 s cooldown / gap must stay below one ENI's addresses, so the pool never needs a new ENI)")
	flag.IntVar(&o.secs, "secs", 5, "seconds per iperf3 / sockperf run")
	flag.IntVar(&o.pods, "pods", 100, "pods started at once on a fresh node (at most 200: the instance type holds 210)")
	flag.BoolVar(&o.quick, "quick", false, "a short run: -reps 2 -warm 8 -secs 2 -pods 30 unless given")
	flag.StringVar(&o.out, "o", "", "also write the report to this file (bench/eni/RESULTS.md)")
	tools := flag.String("tools-bin", os.Getenv("WEFT_TOOLS_BIN"), "etcd and kube-apiserver (tools/build.sh etcd k8s cni)")
	weftBin := flag.String("weft-bin", "bin", "weft's binaries (weftd, weft-eni: make build)")
	rbac := flag.String("rbac", "dist/kube-weft-eni.yaml", "the RBAC manifest weftd runs under")
	prefix := flag.String("prefix", "", "namespace name prefix (default: eb + 4 random hex digits)")
	keep := flag.Bool("keep", false, "keep the work directory (weftd logs, checkpoints) and print its path")
	flag.Parse()
	if o.quick {
		given := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { given[f.Name] = true })
		for name, p := range map[string]*int{"reps": &o.reps, "warm": &o.warm, "secs": &o.secs, "pods": &o.pods} {
			if !given[name] {
				*p = map[string]int{"reps": 2, "warm": 8, "secs": 2, "pods": 30}[name]
			}
		}
	}
	switch {
	case *tools == "":
		fail(fmt.Errorf("-tools-bin or WEFT_TOOLS_BIN is required"))
	case os.Geteuid() != 0:
		fail(fmt.Errorf("needs root (network namespaces)"))
	case o.reps < 1 || o.warm < 1 || o.secs < 1 || o.pods < 1 || o.pods > 200:
		fail(fmt.Errorf("-reps, -warm, -secs at least 1; -pods 1..200"))
	}
	if *prefix == "" {
		*prefix = "eb" + randomID()[:4]
	}
	wb, _ := filepath.Abs(*weftBin)
	rb, _ := filepath.Abs(*rbac)
	load0 := loadavg()
	started := time.Now().UTC()

	e := &env{prefix: *prefix, keep: *keep}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sig
		fmt.Fprintf(os.Stderr, "bench-eni: %v: cleaning up\n", s)
		e.cleanup()
		os.Exit(130)
	}()
	defer e.cleanup()
	nodes, err := e.setup(*tools, wb, rb, o.reps)
	if *keep {
		logf("work directory (kept): %s", e.dir)
	}
	if err != nil {
		e.cleanup()
		fail(err)
	}
	a, b, p, cold := nodes[0], nodes[1], nodes[2], nodes[3:len(nodes)-2]
	xa, xb := nodes[len(nodes)-2], nodes[len(nodes)-1]

	coldS, err := runCold(e, cold)
	if err != nil {
		e.cleanup()
		fail(err)
	}
	manyS, err := runMany(e, p, o.pods)
	if err != nil {
		e.cleanup()
		fail(err)
	}
	warmS, podA, err := runWarm(e, a, o.warm, o.warmGap)
	if err != nil {
		e.cleanup()
		fail(err)
	}
	tr, err := runTraffic(e, a, b, podA, xa, xb, o.reps, o.secs)
	if err != nil {
		e.cleanup()
		fail(err)
	}
	rep := report(o, started, load0, loadavg(), []*scenario{warmS, coldS, manyS}, tr, a, b)
	fmt.Print(rep)
	if o.out != "" {
		md := "# bench/eni: results\n\nWritten by `bench/eni` itself (`-o`); nothing here is edited by hand. Usage: README.md.\n\n```\n" + rep + "```\n"
		if err := os.WriteFile(o.out, []byte(md), 0o644); err != nil {
			e.cleanup()
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench-eni:", err)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}

// runCold starts weftd on each cold node in turn (nothing allocated: min_pool_size 0) and times its first pod.
func runCold(e *env, cold []*node) (*scenario, error) {
	s := &scenario{name: "cold node, first pod", short: "cold (per node)", per: float64(len(cold)), nodes: len(cold),
		api: counts{}, audit: counts{}, agent: counts{}, startup: counts{}}
	for i, n := range cold {
		c0 := e.calls()
		d, err := e.startWeftd(n, coldPool)
		if err != nil {
			return nil, err
		}
		s.start = append(s.start, d)
		s.startup = s.startup.plus(e.calls().minus(c0))
		pd, err := e.newPod(n, fmt.Sprintf("cold%d", i))
		if err != nil {
			return nil, err
		}
		m0, err := e.metrics(n)
		if err != nil {
			return nil, err
		}
		c1, t1 := e.calls(), time.Now()
		took, err := e.add(pd)
		if err != nil {
			return nil, fmt.Errorf("%w\n%s", err, tailLines(n.proc.Logs(), 20))
		}
		s.adds = append(s.adds, took)
		if e.settle(n, 30*time.Second) {
			s.settled++
		}
		m1, err := e.metrics(n)
		if err != nil {
			return nil, err
		}
		s.api = s.api.plus(e.calls().minus(c1))
		s.audit = s.audit.plus(e.audited(n.id, t1, time.Now()))
		s.agent = s.agent.plus(agentWrites(m1).minus(agentWrites(m0)))
		s.weftd = s.weftd.add(m1.histogram("weft_eni_allocation_seconds").sub(m0.histogram("weft_eni_allocation_seconds")))
		enis, _ := e.enisOf(n.id)
		s.enis += enis
		logf("cold %d/%d: socket after %s, first pod %s in %s (%d ENI)", i+1, len(cold), d.Round(time.Millisecond), pd.ip, took.Round(time.Millisecond), enis)
		if err := n.proc.Stop(); err != nil {
			logf("weftd on %s: %v", n.name, err)
		}
	}
	return s, nil
}

// runMany starts weftd on a fresh node and sends pods ADDs at once.
func runMany(e *env, n *node, pods int) (*scenario, error) {
	s := &scenario{name: fmt.Sprintf("%d pods at once, fresh node", pods), short: fmt.Sprintf("%d pods (total)", pods), per: 1, nodes: 1}
	c0 := e.calls()
	d, err := e.startWeftd(n, coldPool)
	if err != nil {
		return nil, err
	}
	s.start = append(s.start, d)
	s.startup = e.calls().minus(c0)
	var ps []*pod
	for i := 0; i < pods; i++ {
		p, err := e.newPod(n, fmt.Sprintf("many%d", i))
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	m0, err := e.metrics(n)
	if err != nil {
		return nil, err
	}
	logf("%d pods: sandboxes ready, sending every ADD at once", pods)
	s.adds = make([]time.Duration, pods)
	errs := make([]error, pods)
	var wg sync.WaitGroup
	c1, t1 := e.calls(), time.Now()
	for i, p := range ps {
		wg.Add(1)
		go func() { defer wg.Done(); s.adds[i], errs[i] = e.add(p) }()
	}
	wg.Wait()
	s.wall = time.Since(t1)
	var ok []time.Duration
	for i, err := range errs {
		if err != nil {
			s.failures++
			if s.firstErr == "" {
				s.firstErr = err.Error()
			}
			continue
		}
		ok = append(ok, s.adds[i])
	}
	s.adds = ok // the latency figures are those of the pods that got an address
	if e.settle(n, 30*time.Second) {
		s.settled++
	}
	m1, err := e.metrics(n)
	if err != nil {
		return nil, err
	}
	s.api = e.calls().minus(c1)
	s.audit = e.audited(n.id, t1, time.Now())
	s.agent = agentWrites(m1).minus(agentWrites(m0))
	s.weftd = m1.histogram("weft_eni_allocation_seconds").sub(m0.histogram("weft_eni_allocation_seconds"))
	s.enis, _ = e.enisOf(n.id)
	served := map[string]time.Duration{} // address -> first ADD sent .. its answer
	for i, p := range ps {
		if errs[i] == nil {
			served[p.ip] = p.done.Sub(t1)
		}
	}
	for k, x := range e.enisTimeline(n.id) {
		first, count := time.Duration(-1), 0
		for _, a := range x.addrs {
			if d, ok := served[a]; ok {
				count++
				if first < 0 || d < first {
					first = d
				}
			}
		}
		line := fmt.Sprintf("ENI %d (%s): CreateNetworkInterface %+.1f s, InUse %+.1f s", k+1, x.id, x.created.Sub(t1).Seconds(), x.inUse.Sub(t1).Seconds())
		if count > 0 {
			line += fmt.Sprintf(", first of its %d pods answered %+.1f s", count, first.Seconds())
		}
		s.timeline = append(s.timeline, line)
	}
	logf("%d pods: all answered in %s (%d failed), %d ENIs", pods, s.wall.Round(time.Millisecond), s.failures, s.enis)
	if s.failures > 0 {
		logf("%d of %d ADDs failed, the first: %s", s.failures, pods, s.firstErr)
	}
	if err := n.proc.Stop(); err != nil {
		logf("weftd on %s: %v", n.name, err)
	}
	return s, nil
}

// runWarm starts weftd with weft's default pool on node a, waits until the pool is full, then times ADDs (each
// followed by DEL, a pause between them); it leaves one pod on a for the traffic runs.
func runWarm(e *env, a *node, reps int, gap time.Duration) (*scenario, *pod, error) {
	s := &scenario{name: "warm pool", short: "warm (per ADD)", per: float64(reps), nodes: 1}
	if _, err := e.startWeftd(a, warmPool); err != nil {
		return nil, nil, err
	}
	if err := e.waitReady(a, 60*time.Second); err != nil {
		return nil, nil, err
	}
	if !e.settle(a, 60*time.Second) {
		return nil, nil, fmt.Errorf("the warm pool of %s did not fill within 60s", a.name)
	}
	enis0, _ := e.enisOf(a.id)
	m0, err := e.metrics(a)
	if err != nil {
		return nil, nil, err
	}
	c1, t1 := e.calls(), time.Now()
	for i := 0; i < reps; i++ {
		p, err := e.newPod(a, fmt.Sprintf("warm%d", i))
		if err != nil {
			return nil, nil, err
		}
		took, err := e.add(p)
		if err != nil {
			return nil, nil, err
		}
		s.adds = append(s.adds, took)
		if err := e.del(p); err != nil {
			return nil, nil, fmt.Errorf("DEL %s: %w", p.Name, err)
		}
		time.Sleep(gap)
	}
	m1, err := e.metrics(a)
	if err != nil {
		return nil, nil, err
	}
	s.api = e.calls().minus(c1)
	s.audit = e.audited(a.id, t1, time.Now())
	s.agent = agentWrites(m1).minus(agentWrites(m0))
	s.weftd = m1.histogram("weft_eni_allocation_seconds").sub(m0.histogram("weft_eni_allocation_seconds"))
	enis1, _ := e.enisOf(a.id)
	s.enis = enis1
	if enis1 != enis0 {
		logf("warning: node A went from %d to %d ENIs during the warm ADDs", enis0, enis1)
	}
	logf("warm: %d ADDs, p50 %s", reps, percentile(s.adds, 0.5).Round(time.Microsecond))
	podA, err := e.newPod(a, "traffic-a")
	if err != nil {
		return nil, nil, err
	}
	if _, err := e.add(podA); err != nil {
		return nil, nil, err
	}
	return s, podA, nil
}

// runTraffic starts weftd on b (shared) and on xa and xb (exclusive ENI mode), puts a pod on each, and interleaves
// node-to-node, shared pod-to-pod and exclusive pod-to-pod runs.
func runTraffic(e *env, a, b *node, podA *pod, xa, xb *node, reps, secs int) (*traffic, error) {
	for _, s := range []struct {
		n    *node
		pool string
	}{{b, warmPool}, {xa, exclusivePool}, {xb, exclusivePool}} {
		if _, err := e.startWeftd(s.n, s.pool); err != nil {
			return nil, err
		}
		if err := e.waitReady(s.n, 60*time.Second); err != nil {
			return nil, err
		}
	}
	newPod := func(n *node, name string) (*pod, error) {
		p, err := e.newPod(n, name)
		if err != nil {
			return nil, err
		}
		_, err = e.add(p)
		return p, err
	}
	podB, err := newPod(b, "traffic-b")
	if err != nil {
		return nil, err
	}
	podXA, err := newPod(xa, "traffic-xa")
	if err != nil {
		return nil, err
	}
	podXB, err := newPod(xb, "traffic-xb")
	if err != nil {
		return nil, err
	}
	for _, c := range [][2]*pod{{podA, podB}, {podXA, podXB}} {
		if err := lab.WaitFor(20*time.Second, "pod "+c[0].Name+" reaches pod "+c[1].Name, func() (bool, error) {
			_, err := lab.NSRun(c[0].ns, "ping", "-c", "1", "-W", "1", c[1].ip)
			return err == nil, err
		}); err != nil {
			return nil, err
		}
	}
	logf("traffic: pod %s (%s) -> pod %s (%s); exclusive pod %s -> %s; node %s -> node %s", podA.ip, a.zone, podB.ip, b.zone,
		podXA.ip, podXB.ip, a.ip, b.ip)
	tr := &traffic{}
	type path struct {
		name                   string
		server, client, target string
		gbps, rr               *[]float64
	}
	paths := []path{{"node", b.name, a.name, b.ip, &tr.nodeGbps, &tr.nodeRR}, {"pod", podB.ns, podA.ns, podB.ip, &tr.podGbps, &tr.podRR},
		{"exclusive pod", podXB.ns, podXA.ns, podXB.ip, &tr.exclGbps, &tr.exclRR}}
	for r := 0; r < reps; r++ {
		order := append(append([]path(nil), paths[r%len(paths):]...), paths[:r%len(paths)]...)
		for _, p := range order {
			g, err := netperf.Iperf3(e.serve, p.server, p.client, p.target, secs)
			if err != nil {
				return nil, fmt.Errorf("iperf3 %s: %w", p.name, err)
			}
			*p.gbps = append(*p.gbps, g)
		}
		for _, p := range order {
			x, err := netperf.Sockperf(e.serve, p.server, p.client, p.target, secs)
			if err != nil {
				return nil, fmt.Errorf("sockperf %s: %w", p.name, err)
			}
			*p.rr = append(*p.rr, x)
		}
		logf("traffic rep %d: node %.2f / pod %.2f / exclusive %.2f Gbit/s, node %.0f / pod %.0f / exclusive %.0f RR/s", r,
			tr.nodeGbps[r], tr.podGbps[r], tr.exclGbps[r], tr.nodeRR[r], tr.podRR[r], tr.exclRR[r])
	}
	return tr, nil
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
