package main

// The scale measurement: -pods pods in -namespaces namespaces and -policies policies loaded into the API server
// while weftd runs, then, at that scale, the time from one change (a policy created, updated, deleted; a pod's
// label; a new pod) to the line of `nft monitor` that shows it in the kernel, and weftd's CPU and memory.

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// scaleResult is what the scale measurement gathered.
type scaleResult struct {
	idle0, idle1       usage // weftd idle before any object, and at scale
	rss0, rss1, rss2   int   // kB: before, at scale idle, after the probes
	load               time.Duration
	loadCPU            time.Duration // weftd's CPU from the first object to the table settled
	table, want        tableSize     // the kernel's at scale; what the renderer says it must be
	probes             []*probe
	probeCPU, probeAll time.Duration // weftd's CPU over the probes, and their wall time
	monitorLines       int
}

// probe is one kind of change with its latencies.
type probe struct {
	name string
	lat  []time.Duration
}

func runScale(e *env, o options) (*scaleResult, error) {
	pid := e.weftd.Cmd.Process.Pid
	s := &scaleResult{}
	var err error
	logf("idle before any object: %s", o.idle)
	if s.idle0, err = idleUsage(pid, o.idle); err != nil {
		return nil, err
	}
	if s.rss0, err = rssKB(pid); err != nil {
		return nil, err
	}
	if s.want, err = expectedTable(o, e.node.Name); err != nil {
		return nil, err
	}
	c0, err := cpuTime(pid)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	if err := load(e, o); err != nil {
		return nil, err
	}
	logf("objects written in %s; waiting for the table to settle", time.Since(t0).Round(time.Millisecond))
	if s.table, s.load, err = settle(e, s.want, t0); err != nil {
		return nil, err
	}
	c1, _ := cpuTime(pid)
	s.loadCPU = c1 - c0
	logf("table as rendered %s after the first object: %+v", s.load.Round(time.Millisecond), s.table)
	logf("idle at scale: %s", o.idle)
	if s.idle1, err = idleUsage(pid, o.idle); err != nil {
		return nil, err
	}
	if s.rss1, err = rssKB(pid); err != nil {
		return nil, err
	}
	m, err := e.monitor()
	if err != nil {
		return nil, err
	}
	defer m.stop()
	time.Sleep(300 * time.Millisecond) // nft monitor subscribed
	c2, _ := cpuTime(pid)
	t2 := time.Now()
	if s.probes, err = runProbes(e, m, o); err != nil {
		return nil, err
	}
	s.probeAll = time.Since(t2)
	c3, _ := cpuTime(pid)
	s.probeCPU = c3 - c2
	s.rss2, _ = rssKB(pid)
	m.mu.Lock()
	s.monitorLines = m.lines
	m.mu.Unlock()
	return s, nil
}

// load writes the namespaces, pods (each then its status) and policies, -workers at a time.
func load(e *env, o options) error {
	for _, ns := range scaleNamespaces(o.namespaces) {
		if err := e.namespace(ns); err != nil {
			return err
		}
	}
	perNS := o.pods / o.namespaces
	var jobs []func() error
	for i := 0; i < o.pods; i++ {
		ns := nsName(i % o.namespaces)
		p, ip := scalePod(ns, e.node.Name, i/o.namespaces, perNS), podIP(i)
		jobs = append(jobs, func() error { return e.createPod(p, ip) })
	}
	pols := append(scalePolicies(o.policies, o.namespaces), flipPolicy())
	for _, np := range pols {
		jobs = append(jobs, func() error {
			_, err := e.cs.NetworkingV1().NetworkPolicies(np.Namespace).Create(context.Background(), np, metav1.CreateOptions{})
			return err
		})
	}
	return parallel(8, jobs)
}

func parallel(workers int, jobs []func() error) error {
	ch := make(chan func() error)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				if err := j(); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
	return first
}

// settle waits until the table has what the renderer says it must (expectedTable) and two listings 1 s apart
// are the same (at most 5 minutes); it returns the listing and the time the expected content was first seen.
func settle(e *env, want tableSize, t0 time.Time) (tableSize, time.Duration, error) {
	var last tableSize
	var reached time.Duration
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		t, err := listTable(e.node.Name)
		if err != nil {
			return t, 0, err
		}
		t.bytes = 0
		if caughtUp(t, want) {
			if reached == 0 {
				reached = time.Since(t0)
			}
			if t == last {
				return t, reached, nil
			}
		}
		last = t
		time.Sleep(time.Second)
	}
	return last, 0, fmt.Errorf("table inet weft-policy not as rendered after 5 minutes: %+v, expected %+v", last, want)
}

// runProbes makes -changes changes of each kind, one at a time, and times each to its line in nft monitor.
func runProbes(e *env, m *monitor, o options) ([]*probe, error) {
	ctx := context.Background()
	nps := e.cs.NetworkingV1().NetworkPolicies(probeNS)
	pods := e.cs.CoreV1().Pods(probeNS)
	create, update, del := &probe{name: "policy create"}, &probe{name: "policy update (port)"}, &probe{name: "policy delete"}
	on, off := &probe{name: "pod label -> isolated"}, &probe{name: "pod label -> not isolated"}
	newPod, delPod := &probe{name: "new pod (create+status)"}, &probe{name: "pod delete"}
	timed := func(p *probe, what string, match func(string) bool, change func() error) error {
		w := m.expect(match)
		t0 := time.Now()
		if err := change(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		at, err := m.wait(w, 30*time.Second, what)
		if err != nil {
			return err
		}
		p.lat = append(p.lat, at.Sub(t0))
		time.Sleep(o.gap)
		return nil
	}
	perNS := o.pods / o.namespaces
	idle0 := idleFrom(perNS)
	for k := 0; k < o.changes; k++ {
		name := fmt.Sprintf("probe-%03d", k)
		if err := timed(create, "create "+name, ruleWithPort(createPort+k), func() error {
			_, err := nps.Create(ctx, probePolicy(name, int32(createPort+k)), metav1.CreateOptions{})
			return err
		}); err != nil {
			return nil, err
		}
		np, err := nps.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		np.Spec.Ingress[0].Ports = probePolicy(name, int32(updatePort+k)).Spec.Ingress[0].Ports
		if err := timed(update, "update "+name, ruleWithPort(updatePort+k), func() error {
			_, err := nps.Update(ctx, np, metav1.UpdateOptions{})
			return err
		}); err != nil {
			return nil, err
		}
		cnt, err := counterByComment(e.node.Name, probeNS+"/"+name+" ingress denied")
		if err != nil {
			return nil, err
		}
		if err := timed(del, "delete "+name, counterGone(cnt), func() error {
			return nps.Delete(ctx, name, metav1.DeleteOptions{})
		}); err != nil {
			return nil, err
		}
		// The label probes go round probeNS's idle pods (global index: namespace 0's pod j is pod j*namespaces).
		j := idle0 + k%(perNS-idle0)
		podName, ip := fmt.Sprintf("pod-%04d", j), podIP(j*o.namespaces)
		label := func(v string) func() error {
			return func() error {
				patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]any{"flip": v}}})
				_, err := pods.Patch(ctx, podName, types.MergePatchType, patch, metav1.PatchOptions{})
				return err
			}
		}
		if err := timed(on, podName+" flip=on", ingressElement("add", ip), label("on")); err != nil {
			return nil, err
		}
		if err := timed(off, podName+" flip=off", ingressElement("delete", ip), label("off")); err != nil {
			return nil, err
		}
		np2 := fmt.Sprintf("new-%03d", k)
		ip2 := fmt.Sprintf("10.246.0.%d", 1+k%250)
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: np2, Namespace: probeNS, Labels: map[string]string{"app": "idle", "flip": "on"}},
			Spec: corev1.PodSpec{NodeName: e.node.Name, Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/pause"}}}}
		if err := timed(newPod, "new pod "+np2, ingressElement("add", ip2), func() error { return e.createPod(p, ip2) }); err != nil {
			return nil, err
		}
		if err := timed(delPod, "delete pod "+np2, ingressElement("delete", ip2), func() error {
			return pods.Delete(ctx, np2, metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))})
		}); err != nil {
			return nil, err
		}
		if (k+1)%10 == 0 {
			logf("probes: %d of %d rounds", k+1, o.changes)
		}
	}
	return []*probe{create, update, del, on, off, newPod, delPod}, nil
}
