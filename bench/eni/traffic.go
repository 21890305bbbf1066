package main

// The traffic measurement: pod-to-pod and exclusive-ENI pod-to-pod TCP throughput and request/response rate
// against node-to-node, runs interleaved.

import (
	"fmt"
	"time"

	"github.com/weftnet/weft/bench/netperf"
	"github.com/weftnet/weft/internal/lab"
)

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
