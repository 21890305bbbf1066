package main

// The allocation measurements: a cold node's first pod, -pods pods at once on a fresh node, and ADDs from a
// warm pool, each with the API calls it cost.

import (
	"fmt"
	"sync"
	"time"
)

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
