// Command policy measures weft's NetworkPolicy engine with the real weftd in Kubernetes mode in a lab node
// namespace, against a real kube-apiserver (etcd and kube-apiserver in the lab's underlay), in one run:
//
//  1. scale: -pods pods on that node (Pod objects with status.podIP and nodeName; no network of their own, only
//     the rules matter) in -namespaces namespaces, -policies policies of a realistic mix (objects.go); the time
//     from a change (a policy created, updated, deleted; a pod's label; a new pod; a pod deleted) to its line in
//     `nft monitor` in the node namespace, p50/p99 over -changes changes of each; the table's rules, sets and
//     elements; weftd's CPU (/proc/<pid>/stat) idle, loading and during the changes, and its RSS;
//  2. datapath: iperf3 throughput and sockperf ping-pong between two pod namespaces routed through the node,
//     with -dp-policies policies isolating the server (each admitting the client among other peers) against
//     none, -reps alternating runs, server on CPU 0 and client on CPU 1, as ratios with min..max.
//
// It writes the report to -o (bench/policy/RESULTS.md). Everything it makes is removed at the end and on
// SIGINT/SIGTERM.
//
//	make bench-policy               (the full run; BENCH_QUICK=1 for a short one)
//	bin/bench-policy -quick         (a short run: 200 pods, 100 policies, 10 changes, 2 reps x 2 s)
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
	pods, namespaces, policies, changes int
	dpPolicies, reps, secs              int
	idle, gap                           time.Duration
	quick                               bool
	out                                 string
}

func main() {
	var o options
	flag.IntVar(&o.pods, "pods", 1000, "pods on the node")
	flag.IntVar(&o.namespaces, "namespaces", 20, "namespaces the pods and policies are spread over")
	flag.IntVar(&o.policies, "policies", 500, "NetworkPolicies")
	flag.IntVar(&o.changes, "changes", 50, "changes of each kind timed")
	flag.IntVar(&o.dpPolicies, "dp-policies", 100, "policies isolating the traffic server")
	flag.IntVar(&o.reps, "reps", 5, "alternating traffic repetitions (each: without and with the policies)")
	flag.IntVar(&o.secs, "secs", 5, "seconds per iperf3 / sockperf run")
	flag.DurationVar(&o.idle, "idle", 20*time.Second, "window of each idle CPU measurement")
	flag.DurationVar(&o.gap, "gap", 100*time.Millisecond, "pause after each timed change")
	flag.BoolVar(&o.quick, "quick", false, "a short run: -pods 200 -policies 100 -changes 10 -reps 2 -secs 2 -idle 5s unless given")
	flag.StringVar(&o.out, "o", "", "also write the report to this file (bench/policy/RESULTS.md)")
	tools := flag.String("tools-bin", os.Getenv("WEFT_TOOLS_BIN"), "etcd and kube-apiserver (tools/build.sh etcd k8s)")
	weftd := flag.String("weftd", "bin/weftd", "the weftd binary (make build)")
	rbac := flag.String("rbac", "dist/rbac.yaml", "the RBAC manifest weftd runs under")
	prefix := flag.String("prefix", "", "namespace name prefix (default: pb + 4 random hex digits)")
	keep := flag.Bool("keep", false, "keep the work directory (weftd's log) and print its path")
	flag.Parse()
	if o.quick {
		given := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { given[f.Name] = true })
		for name, p := range map[string]*int{"pods": &o.pods, "policies": &o.policies, "changes": &o.changes, "reps": &o.reps, "secs": &o.secs} {
			if !given[name] {
				*p = map[string]int{"pods": 200, "policies": 100, "changes": 10, "reps": 2, "secs": 2}[name]
			}
		}
		if !given["idle"] {
			o.idle = 5 * time.Second
		}
	}
	switch {
	case *tools == "":
		fail(fmt.Errorf("-tools-bin or WEFT_TOOLS_BIN is required"))
	case os.Geteuid() != 0:
		fail(fmt.Errorf("needs root (network namespaces, nft)"))
	case o.namespaces < 2 || o.pods < 5*o.namespaces || o.pods > 60000:
		fail(fmt.Errorf("-namespaces at least 2; -pods at least 5 per namespace, at most 60000"))
	case o.policies < 1 || o.changes < 1 || o.dpPolicies < 1 || o.reps < 1 || o.secs < 1:
		fail(fmt.Errorf("-policies, -changes, -dp-policies, -reps, -secs: at least 1"))
	}
	if *prefix == "" {
		*prefix = "pb" + randomHex(2)
	}
	wd, _ := filepath.Abs(*weftd)
	rb, _ := filepath.Abs(*rbac)
	load0, started := loadavg(), time.Now().UTC()

	e := &env{prefix: *prefix, keep: *keep}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sig
		fmt.Fprintf(os.Stderr, "bench-policy: %v: cleaning up\n", s)
		e.cleanup()
		os.Exit(130)
	}()
	defer e.cleanup()
	check := func(err error) {
		if err != nil {
			if e.weftd != nil && *keep {
				logf("weftd log: %s", e.weftd.Log)
			}
			e.cleanup()
			fail(err)
		}
	}
	err := e.setup(*tools, wd, rb)
	if *keep {
		logf("work directory (kept): %s", e.dir)
	}
	check(err)
	logf("weftd ready on %s (pid %d)", e.node.Name, e.weftd.Cmd.Process.Pid)
	sc, err := runScale(e, o)
	check(err)
	m, err := e.monitor()
	check(err)
	time.Sleep(300 * time.Millisecond)
	dp, err := runDatapath(e, m, o)
	m.stop()
	check(err)
	rep := report(o, started, load0, loadavg(), sc, dp)
	fmt.Print(rep)
	if o.out != "" {
		md := "# bench/policy: results\n\nWritten by `bench/policy` itself (`-o`); nothing here is edited by hand. What it measures: the header of bench/policy/main.go.\n\n```\n" + rep + "```\n"
		check(os.WriteFile(o.out, []byte(md), 0o644))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench-policy:", err)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}
