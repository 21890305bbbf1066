package main

// The datapath cost: TCP throughput (iperf3) and request/response rate (sockperf ping-pong) from a client pod
// to a server pod of the node, routed through the node namespace, with -dp-policies policies isolating the
// server (each admitting the client among other peers) and with none. The policies stay in the API server; the
// server's label policed=yes|no switches them on and off, and each run waits until the kernel has the switch.
// Runs alternate (the order flipping per rep), server on CPU 0 and client on CPU 1 (bench/netperf).

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/weftnet/weft/bench/netperf"
	"github.com/weftnet/weft/internal/lab"
)

type datapathResult struct {
	offGbps, onGbps, offRR, onRR []float64
	chainRules                   int // rules in the server's ingress chain with the policies on
	switchOn, switchOff          []time.Duration
}

func runDatapath(e *env, m *monitor, o options) (*datapathResult, error) {
	ctx := context.Background()
	if err := e.namespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: datapathNS, Labels: map[string]string{"team": "bench"}}}); err != nil {
		return nil, err
	}
	mk := func(name string, l map[string]string, ip string) error {
		return e.createPod(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: datapathNS, Labels: l},
			Spec: corev1.PodSpec{NodeName: e.node.Name, Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/pause"}}}}, ip)
	}
	if err := mk("server", map[string]string{"app": "server", "policed": "no"}, serverIP); err != nil {
		return nil, err
	}
	if err := mk("client", map[string]string{"app": "client", "role": "client"}, clientIP); err != nil {
		return nil, err
	}
	sns, err := e.podNS("ps", serverIP)
	if err != nil {
		return nil, err
	}
	cns, err := e.podNS("pc", clientIP)
	if err != nil {
		return nil, err
	}
	var jobs []func() error
	for k := 0; k < o.dpPolicies; k++ {
		np := datapathPolicy(k)
		jobs = append(jobs, func() error {
			_, err := e.cs.NetworkingV1().NetworkPolicies(datapathNS).Create(ctx, np, metav1.CreateOptions{})
			return err
		})
	}
	if err := parallel(8, jobs); err != nil {
		return nil, err
	}
	if err := lab.WaitFor(20*time.Second, "client pod reaches server pod", func() (bool, error) {
		_, err := lab.NSRun(cns, "ping", "-c", "1", "-W", "1", serverIP)
		return err == nil, err
	}); err != nil {
		return nil, err
	}
	d := &datapathResult{}
	state := false // the server's label: policed=no
	policed := func(on bool) error {
		if on == state {
			return nil
		}
		state = on
		v, op, p := "no", "delete", &d.switchOff
		if on {
			v, op, p = "yes", "add", &d.switchOn
		}
		w := m.expect(ingressElement(op, serverIP))
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]any{"policed": v}}})
		t0 := time.Now()
		if _, err := e.cs.CoreV1().Pods(datapathNS).Patch(ctx, "server", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return err
		}
		at, err := m.wait(w, 30*time.Second, "server policed="+v)
		if err != nil {
			return err
		}
		*p = append(*p, at.Sub(t0))
		time.Sleep(200 * time.Millisecond)
		return nil
	}
	// One check that the policies are in force: on, the client still reaches the traffic ports but not another.
	if err := policed(true); err != nil {
		return nil, err
	}
	if d.chainRules, err = serverChainRules(e.node.Name); err != nil {
		return nil, err
	}
	if err := refused(e, sns, cns); err != nil {
		return nil, err
	}
	modes := []bool{false, true}
	for r := 0; r < o.reps; r++ {
		order := modes
		if r%2 == 1 {
			order = []bool{true, false}
		}
		for _, on := range order {
			if err := policed(on); err != nil {
				return nil, err
			}
			g, err := netperf.Iperf3(e.serve, sns, cns, serverIP, o.secs)
			if err != nil {
				return nil, fmt.Errorf("iperf3 (policies %v): %w", on, err)
			}
			x, err := netperf.Sockperf(e.serve, sns, cns, serverIP, o.secs)
			if err != nil {
				return nil, fmt.Errorf("sockperf (policies %v): %w", on, err)
			}
			if on {
				d.onGbps, d.onRR = append(d.onGbps, g), append(d.onRR, x)
			} else {
				d.offGbps, d.offRR = append(d.offGbps, g), append(d.offRR, x)
			}
			logf("datapath rep %d, %d policies %v: %.2f Gbit/s, %.0f RR/s", r, o.dpPolicies, on, g, x)
		}
	}
	return d, nil
}

// serverChainRules counts the rules of the chain the ingress map sends the server's address to.
func serverChainRules(node string) (int, error) {
	out, err := lab.NSRun(node, "nft", "list", "map", "inet", "weft-policy", "ingress4")
	if err != nil {
		return 0, err
	}
	chain := ""
	for _, f := range strings.Split(out, ",") {
		if i := strings.Index(f, serverIP+" : goto "); i >= 0 {
			chain = strings.Fields(f[i+len(serverIP+" : goto "):])[0]
		}
	}
	if chain == "" {
		return 0, fmt.Errorf("map ingress4 has no element for %s:\n%s", serverIP, out)
	}
	js, err := lab.NSRun(node, "nft", "-j", "list", "chain", "inet", "weft-policy", strings.TrimRight(chain, "}"))
	if err != nil {
		return 0, err
	}
	return strings.Count(js, `"rule":`), nil
}

// refused checks, with the policies on, that a port none of them admits is dropped while 5299 is reached.
func refused(e *env, sns, cns string) error {
	for _, c := range []struct {
		port string
		want bool
	}{{"5299", true}, {"7777", false}} {
		stop, err := e.serve(sns, "iperf3", "-s", "-1", "-B", serverIP, "-p", c.port)
		if err != nil {
			return err
		}
		time.Sleep(300 * time.Millisecond)
		_, err = lab.NSRun(cns, "iperf3", "-c", serverIP, "-p", c.port, "-t", "1", "--connect-timeout", "1000")
		stop()
		if (err == nil) != c.want {
			return fmt.Errorf("policies on: client -> server port %s: reached %v, expected %v (%v)", c.port, err == nil, c.want, err)
		}
	}
	return nil
}
