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
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
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
