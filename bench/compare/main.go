// Command compare measures weftd side by side with upstream flanneld on the same two-node namespace topology
// (internal/lab), alternating the two daemons (A B A B ...) in one run: resident memory, time from start to
// subnet.env written (fresh lease and restart), and pod-to-pod throughput (iperf3) and TCP request/response rate
// (sockperf ping-pong) over vxlan, plus the bare underlay (node to node) as the reference. Client and server are
// pinned to different CPUs. Results are medians with the per-pair ratio weft/upstream (median, min, max).
//
//	go run ./bench/compare -reps 5 -secs 5      (make bench)
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/weftnet/weft/bench/netperf"
	"github.com/weftnet/weft/internal/lab"
)

type sample struct {
	rssMB, startMS, restartMS, gbps, rr float64
}

func main() {
	reps := flag.Int("reps", 5, "repetitions per daemon (alternating)")
	secs := flag.Int("secs", 5, "seconds per iperf3 / sockperf run")
	tools := flag.String("tools-bin", os.Getenv("WEFT_TOOLS_BIN"), "third-party binaries (flanneld, etcd, CNI plugins)")
	weftBin := flag.String("weft-bin", "bin", "weft's binaries")
	backend := flag.String("backend", "vxlan", "backend to measure")
	flag.Parse()
	if *tools == "" {
		fail(fmt.Errorf("-tools-bin or WEFT_TOOLS_BIN is required"))
	}
	wb, _ := filepath.Abs(*weftBin)
	daemons := map[string]string{"flanneld": filepath.Join(*tools, "flanneld"), "weftd": filepath.Join(wb, "weftd")}
	plugins := map[string]string{"flanneld": filepath.Join(*tools, "flannel-upstream-cni"), "weftd": filepath.Join(wb, "flannel")}
	res := map[string][]sample{}
	var under []sample
	for r := 0; r < *reps; r++ {
		for _, d := range []string{"flanneld", "weftd"} {
			s, u, err := measure(*tools, daemons[d], plugins[d], *backend, *secs, r == 0 && d == "flanneld")
			if err != nil {
				fail(fmt.Errorf("%s rep %d: %w", d, r, err))
			}
			res[d] = append(res[d], s)
			if u != nil {
				under = append(under, *u)
			}
			fmt.Fprintf(os.Stderr, "rep %d %-8s rss %.1f MB start %.0f ms restart %.0f ms %.2f Gbit/s %.0f RR/s\n",
				r, d, s.rssMB, s.startMS, s.restartMS, s.gbps, s.rr)
		}
	}
	report(res, under, *reps, *secs, *backend)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "compare:", err)
	os.Exit(1)
}

// measure builds a fresh two-node lab, runs daemon on both nodes and measures it. With underlay, it also
// measures node-to-node traffic on the bare underlay first.
func measure(tools, daemon, plugin, backend string, secs int, underlay bool) (sample, *sample, error) {
	var s sample
	dir, _ := os.MkdirTemp("", "weft-bench-")
	defer os.RemoveAll(dir)
	l, err := lab.New(lab.Options{Nodes: 2, Dir: dir, ToolsBin: tools})
	if err != nil {
		return s, nil, err
	}
	defer l.Down()
	if err := l.StartEtcd(); err != nil {
		return s, nil, err
	}
	if err := l.PutNetConfig(fmt.Sprintf(`{"Network":"10.244.0.0/16","Backend":{"Type":%q}}`, backend)); err != nil {
		return s, nil, err
	}
	var u *sample
	if underlay {
		g, err := netperf.Iperf3(netperf.Exec, l.Nodes[1].Name, l.Nodes[0].Name, l.Nodes[1].Addr, secs)
		if err != nil {
			return s, nil, err
		}
		rr, err := netperf.Sockperf(netperf.Exec, l.Nodes[1].Name, l.Nodes[0].Name, l.Nodes[1].Addr, secs)
		if err != nil {
			return s, nil, err
		}
		u = &sample{gbps: g, rr: rr}
	}
	for i, n := range l.Nodes {
		t0 := time.Now()
		if _, err := n.StartDaemon(lab.DaemonOptions{Binary: daemon}); err != nil {
			return s, nil, err
		}
		if err := waitFile(n.SubnetFile(), n.Daemon); err != nil {
			return s, nil, err
		}
		if i == 0 {
			s.startMS = float64(time.Since(t0).Microseconds()) / 1000
		}
	}
	// Restart with lease reuse.
	n := l.Nodes[0]
	if err := n.Daemon.Stop(); err != nil {
		return s, nil, fmt.Errorf("stop: %w", err)
	}
	_ = os.Remove(n.SubnetFile())
	t0 := time.Now()
	if _, err := n.StartDaemon(lab.DaemonOptions{Binary: daemon}); err != nil {
		return s, nil, err
	}
	if err := waitFile(n.SubnetFile(), n.Daemon); err != nil {
		return s, nil, err
	}
	s.restartMS = float64(time.Since(t0).Microseconds()) / 1000
	var pods []*lab.Pod
	for _, n := range l.Nodes {
		p, err := n.AddPod("bench", lab.CNIOptions{Plugin: plugin})
		if err != nil {
			return s, nil, err
		}
		pods = append(pods, p)
	}
	if err := lab.WaitFor(20*time.Second, "pods reach each other", func() (bool, error) {
		return pods[0].Ping(pods[1].IP4, 1) == nil, nil
	}); err != nil {
		return s, nil, err
	}
	time.Sleep(5 * time.Second) // RSS after settling, as lab.md measured it
	s.rssMB = rss(l.Nodes[1].Daemon.Cmd.Process.Pid)
	if s.gbps, err = netperf.Iperf3(netperf.Exec, pods[1].Name, pods[0].Name, pods[1].IP4, secs); err != nil {
		return s, nil, err
	}
	if s.rr, err = netperf.Sockperf(netperf.Exec, pods[1].Name, pods[0].Name, pods[1].IP4, secs); err != nil {
		return s, nil, err
	}
	return s, u, nil
}

func waitFile(path string, p *lab.Proc) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && strings.Contains(string(b), "FLANNEL_MTU") {
			return nil
		}
		if p.Exited() {
			return fmt.Errorf("daemon exited: %s", p.Logs())
		}
		time.Sleep(2 * time.Millisecond)
	}
	return fmt.Errorf("%s not written within 30s", path)
}

func rss(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	m := regexp.MustCompile(`VmRSS:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	kb, _ := strconv.ParseFloat(string(m[1]), 64)
	return kb / 1024
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func report(res map[string][]sample, under []sample, reps, secs int, backend string) {
	fmt.Printf("weftd vs upstream flanneld v0.28.10, %s, 2 nodes in namespaces, %d alternating pairs, %d s per traffic run\n", backend, reps, secs)
	fmt.Printf("command: go run ./bench/compare -reps %d -secs %d -backend %s   (make bench)\n\n", reps, secs, backend)
	metrics := []struct {
		name string
		get  func(sample) float64
	}{
		{"RSS MB (5 s after start)", func(s sample) float64 { return s.rssMB }},
		{"start -> subnet.env ms (new lease)", func(s sample) float64 { return s.startMS }},
		{"restart -> subnet.env ms (lease reuse)", func(s sample) float64 { return s.restartMS }},
		{"pod-to-pod Gbit/s (iperf3)", func(s sample) float64 { return s.gbps }},
		{"pod-to-pod TCP RR/s (sockperf)", func(s sample) float64 { return s.rr }},
	}
	fmt.Printf("%-40s %12s %12s %26s\n", "metric", "flanneld", "weftd", "ratio weft/flannel (min..max)")
	for _, m := range metrics {
		var a, b, ratios []float64
		for i := range res["weftd"] {
			x, y := m.get(res["flanneld"][i]), m.get(res["weftd"][i])
			a, b = append(a, x), append(b, y)
			if x > 0 {
				ratios = append(ratios, y/x)
			}
		}
		sort.Float64s(ratios)
		fmt.Printf("%-40s %12.2f %12.2f %12.2f (%.2f..%.2f)\n", m.name, median(a), median(b), median(ratios), ratios[0], ratios[len(ratios)-1])
	}
	if len(under) > 0 {
		fmt.Printf("\nunderlay node-to-node reference: %.2f Gbit/s, %.0f RR/s (pod-to-pod over %s: weftd %.2f / flanneld %.2f of underlay throughput)\n",
			under[0].gbps, under[0].rr, backend, median(col(res["weftd"], func(s sample) float64 { return s.gbps }))/under[0].gbps,
			median(col(res["flanneld"], func(s sample) float64 { return s.gbps }))/under[0].gbps)
	}
}

func col(ss []sample, f func(sample) float64) []float64 {
	var out []float64
	for _, s := range ss {
		out = append(out, f(s))
	}
	return out
}
