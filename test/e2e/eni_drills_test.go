package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/cloud/aliyun/sim"
	"github.com/weftnet/weft/internal/eni/checkpoint"
	"github.com/weftnet/weft/internal/eni/datapath"
	"github.com/weftnet/weft/internal/lab"
)

// Drills of the eni backend on alisim's fabric: churn across a crash, vSwitches running out, an ENI detached
// behind weftd's back, a restart with pods alive. Each asserts on the state left behind: the checkpoint file,
// the cloud (the node's ENIs through the API), the host (veths, routes and rules in the node namespace).

// keepLogs copies the nodes' weftd logs to $TMPDIR/weft-drills when the test fails (the lab's directory goes).
func (e *eniEnv) keepLogs() {
	e.t.Cleanup(func() {
		if !e.t.Failed() {
			return
		}
		dir := filepath.Join(os.TempDir(), "weft-drills")
		_ = os.MkdirAll(dir, 0o755)
		for _, n := range e.nodes {
			if b, err := os.ReadFile(filepath.Join(n.Dir, "weftd.log")); err == nil {
				out := filepath.Join(dir, e.t.Name()+"-"+n.Name+".log")
				if os.WriteFile(out, b, 0o644) == nil {
					e.t.Logf("weftd log of %s kept in %s", n.Name, out)
				}
			}
		}
	})
}

// checkpointOf reads n's checkpoint file (Load validates it: no address twice, every field well-formed).
func (e *eniEnv) checkpointOf(n *lab.Node) *checkpoint.File {
	e.t.Helper()
	f, err := checkpoint.Store{Path: filepath.Join(n.Dir, "eni", "checkpoint.json")}.Load()
	if err != nil {
		e.t.Fatalf("%s checkpoint: %v", n.Name, err)
	}
	return f
}

// assignedOf: the checkpoint's Assigned records by container id.
func assignedOf(f *checkpoint.File) map[string]checkpoint.Record {
	out := map[string]checkpoint.Record{}
	for _, r := range f.Records {
		if r.State == checkpoint.Assigned {
			out[r.ContainerID] = r
		}
	}
	return out
}

// hostView is the pod datapath the node namespace holds, read with ip(8), not with the code under test.
type hostView struct {
	veths  map[string]bool       // links named wen*
	routes map[netip.Addr]string // /32 routes in the main table -> their device
	toPod  map[netip.Addr]int    // rule priority 512 "to <ip> lookup main"
	from   map[netip.Addr]string // rule priority 2048 "from <ip> lookup <table>" -> the table
}

func hostOf(t *testing.T, n *lab.Node) hostView {
	t.Helper()
	h := hostView{veths: map[string]bool{}, routes: map[netip.Addr]string{}, toPod: map[netip.Addr]int{}, from: map[netip.Addr]string{}}
	var links []struct {
		Name string `json:"ifname"`
	}
	ipJSON(t, n, &links, "-j", "link", "show")
	for _, l := range links {
		if strings.HasPrefix(l.Name, "wen") {
			h.veths[l.Name] = true
		}
	}
	var routes []struct {
		Dst string `json:"dst"`
		Dev string `json:"dev"`
	}
	ipJSON(t, n, &routes, "-j", "-4", "route", "show", "table", "main")
	for _, r := range routes {
		if a, err := netip.ParseAddr(r.Dst); err == nil {
			h.routes[a] = r.Dev
		}
	}
	var rules []struct {
		Priority int    `json:"priority"`
		Src      string `json:"src"`
		Dst      string `json:"dst"`
		Table    string `json:"table"`
	}
	ipJSON(t, n, &rules, "-j", "-4", "rule", "show")
	for _, r := range rules {
		switch r.Priority {
		case datapath.DefaultRules.ToPod:
			a, err := netip.ParseAddr(r.Dst)
			if err != nil {
				t.Errorf("%s: a rule at priority %d not to one address: %+v", n.Name, r.Priority, r)
				continue
			}
			h.toPod[a]++
		case datapath.DefaultRules.FromPod:
			a, err := netip.ParseAddr(r.Src)
			if err != nil {
				t.Errorf("%s: a rule at priority %d not from one address: %+v", n.Name, r.Priority, r)
				continue
			}
			if _, dup := h.from[a]; dup {
				t.Errorf("%s: two rules at priority %d from %s", n.Name, r.Priority, a)
			}
			h.from[a] = r.Table
		}
	}
	return h
}

func ipJSON(t *testing.T, n *lab.Node, v any, args ...string) {
	t.Helper()
	out, err := lab.NSRun(n.Name, append([]string{"ip"}, args...)...)
	if err != nil {
		t.Fatalf("%s: ip %v: %v: %s", n.Name, args, err, out)
	}
	if strings.TrimSpace(out) == "" {
		return
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("%s: ip %v: %v: %s", n.Name, args, err, out)
	}
}

// agree checks that the checkpoint, the cloud and the host say the same about n: every Assigned record is one
// of live (container id -> pod) and every live pod has one, at the address it was given, on the ENI the cloud
// lists that address on; every host veth, /32 pod route and pod rule is a live pod's, with both rules present.
func (e *eniEnv) agree(t *testing.T, n *lab.Node, instance string, live []*eniPod) []string {
	t.Helper()
	var problems []string
	errorf := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	f := e.checkpointOf(n)
	assigned := assignedOf(f)
	enis := e.enisOf(instance)
	h := hostOf(t, n)
	want := map[string]*eniPod{}
	byIP := map[string]string{}
	veths := map[string]bool{}
	for _, p := range live {
		want[p.ContainerID] = p
		if other, dup := byIP[p.IP]; dup {
			errorf("pods %s and %s share the address %s", other, p.Name, p.IP)
		}
		byIP[p.IP] = p.Name
		veths[datapath.HostVethName(p.ContainerID, "eth0")] = true
	}
	for id, r := range assigned {
		p := want[id]
		if p == nil {
			errorf("leak: the checkpoint holds %s Assigned to %s/%s (container %.12s), which is no live pod", r.IP, r.PodNamespace, r.PodName, id)
			continue
		}
		if r.IP.String() != p.IP {
			errorf("pod %s has %s, the checkpoint says %s", p.Name, p.IP, r.IP)
		}
		if got := eniHolding(enis, r.IP.String()); got != r.ENI {
			errorf("pod %s: the checkpoint puts %s on %s, the cloud on %q", p.Name, r.IP, r.ENI, got)
		}
	}
	for id, p := range want {
		if _, ok := assigned[id]; !ok {
			errorf("live pod %s (%s) has no Assigned record", p.Name, p.IP)
		}
		a := netip.MustParseAddr(p.IP)
		if dev := h.routes[a]; dev != datapath.HostVethName(p.ContainerID, "eth0") {
			errorf("live pod %s: host route to %s via %q, want its veth", p.Name, a, dev)
		}
		if h.toPod[a] != 1 || h.from[a] == "" {
			errorf("live pod %s (%s): rules to-pod x%d, from-pod table %q; want one of each", p.Name, a, h.toPod[a], h.from[a])
		}
	}
	for v := range h.veths {
		if !veths[v] {
			errorf("leak: host veth %s is no live pod's", v)
		}
	}
	for a := range h.toPod {
		if byIP[a.String()] == "" {
			errorf("leak: a rule to %s at priority 512, which no live pod holds", a)
		}
	}
	for a := range h.from {
		if byIP[a.String()] == "" {
			errorf("leak: a rule from %s at priority 2048, which no live pod holds", a)
		}
	}
	for a, dev := range h.routes {
		if strings.HasPrefix(dev, "wen") && byIP[a.String()] == "" {
			errorf("leak: a host route to %s via %s, which no live pod holds", a, dev)
		}
	}
	return problems
}

// agreeSoon waits (10 s) for agree to find nothing: the host loop converges the rules every 5 s.
func (e *eniEnv) agreeSoon(t *testing.T, n *lab.Node, instance string, live []*eniPod) {
	t.Helper()
	var problems []string
	if err := lab.WaitFor(10*time.Second, "checkpoint, cloud and host agree", func() (bool, error) {
		problems = e.agree(t, n, instance, live)
		return len(problems) == 0, nil
	}); err != nil {
		for _, p := range problems {
			t.Error(p)
		}
	}
}

// forget makes n's runtime lose the sandbox, as a runtime that lost its state: libcni's cached result goes, so
// its GC does not DEL it (weftd's GC has to find the address).
func (e *eniEnv) forget(n *lab.Node, p *eniPod) {
	e.t.Helper()
	files, _ := filepath.Glob(filepath.Join(n.Dir, "cni-cache", "results", "*"+p.ContainerID+"*"))
	if len(files) == 0 {
		e.t.Fatalf("no cached result of %s in %s", p.Name, filepath.Join(n.Dir, "cni-cache"))
	}
	for _, f := range files {
		if err := os.Remove(f); err != nil {
			e.t.Fatal(err)
		}
	}
}

// gcUntil runs the runtime's GC verb with live as the valid attachments until n's checkpoint holds Assigned
// records for live only (an allocation is collected once it is a minute old: the ADD may still be under way).
func (e *eniEnv) gcUntil(t *testing.T, n *lab.Node, live []*eniPod, timeout time.Duration) {
	t.Helper()
	var valid []lab.Sandbox
	keep := map[string]bool{}
	for _, p := range live {
		valid = append(valid, p.Sandbox)
		keep[p.ContainerID] = true
	}
	var stray []string
	if err := lab.WaitFor(timeout, "GC collects the addresses of gone pods", func() (bool, error) {
		if err := e.rts[n.Name].GC(context.Background(), valid); err != nil {
			return false, fmt.Errorf("CNI GC: %w", err)
		}
		stray = nil
		for id, r := range assignedOf(e.checkpointOf(n)) {
			if !keep[id] {
				stray = append(stray, fmt.Sprintf("%s (%s/%s, assigned %s ago)", r.IP, r.PodNamespace, r.PodName, time.Since(r.AssignedAt).Round(time.Second)))
			}
		}
		return len(stray) == 0, nil
	}); err != nil {
		t.Errorf("%v: still Assigned: %v", err, stray)
	}
}

// eventsOf lists the Events of reason on node.
func (e *eniEnv) eventsOf(node, reason string) []corev1.Event {
	e.t.Helper()
	list, err := e.kube.Client.CoreV1().Events("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []corev1.Event
	for _, ev := range list.Items {
		if ev.Reason == reason && ev.InvolvedObject.Kind == "Node" && ev.InvolvedObject.Name == node {
			out = append(out, ev)
		}
	}
	return out
}

func (e *eniEnv) condition(node string) *corev1.NodeCondition {
	e.t.Helper()
	nd, err := e.kube.Client.CoreV1().Nodes().Get(context.Background(), node, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	for i := range nd.Status.Conditions {
		if nd.Status.Conditions[i].Type == corev1.NodeNetworkUnavailable {
			return &nd.Status.Conditions[i]
		}
	}
	return nil
}

func retryable(err error) bool {
	var te *types.Error
	return errors.As(err, &te) && te.Code == types.ErrTryAgainLater
}

// TestENIChurnKill: 500 ADD/DEL cycles at concurrency 8 on one node, weftd killed (SIGKILL) in the middle and
// started again while the cycles go on, as a kubelet would go on: ADDs during the outage fail with a retryable
// error and are retried in a new sandbox, DELs succeed from prevResult. Afterwards: no address was ever held by
// two pods at once, the 10 pods kept alive across the crash were adopted, and nothing leaked.
func TestENIChurnKill(t *testing.T) {
	t.Parallel()
	const (
		cycles      = 500
		concurrency = 8
		kept        = 10
		killAt      = cycles / 2
		port        = 10410
	)
	e := newENIEnv(t, 1, func(st *sim.State) { st.Instances[0].Type = "ecs.c7.4xlarge" }) // 7 x 30 = 210 pods
	e.keepLogs()
	n := e.nodes[0]
	inner := e.conf
	e.conf = func(n *lab.Node) string {
		return strings.Replace(inner(n), `"min_pool_size":1,"warm_pool_target":2,"max_pool_size":4`, `"min_pool_size":8,"warm_pool_target":16,"max_pool_size":64`, 1)
	}
	e.startENI(n, port)
	e.waitReady(n, 90*time.Second)

	var (
		mu         sync.Mutex
		held       = map[string]string{} // address -> the live pod holding it
		double     []string
		unexpected []string
	)
	take := func(p *eniPod) {
		mu.Lock()
		defer mu.Unlock()
		if other, ok := held[p.IP]; ok {
			double = append(double, fmt.Sprintf("%s given to %s while %s holds it", p.IP, p.Name, other))
		}
		held[p.IP] = p.Name
	}
	drop := func(p *eniPod) {
		mu.Lock()
		defer mu.Unlock()
		if held[p.IP] == p.Name {
			delete(held, p.IP)
		}
	}
	var retried, outageDels, delRetries atomic.Int64
	var atKill []string  // failures of requests weftd died in the middle of
	var upFails []string // ADDs that failed while weftd was up (the pool did not keep up)
	var down atomic.Bool
	// del runs DEL as a kubelet does: a failed one is tried again (only a DEL weftd died in the middle of may
	// fail: one to a weftd that is not there succeeds from prevResult).
	var del func(p *eniPod) error
	del = func(p *eniPod) error {
		for try := 0; ; try++ {
			err := e.rts[n.Name].Del(context.Background(), p.Sandbox)
			if err == nil {
				return nil
			}
			if !down.Load() || try == 3 {
				return fmt.Errorf("DEL %s (weftd down: %v): %w", p.Name, down.Load(), err)
			}
			mu.Lock()
			atKill = append(atKill, fmt.Sprintf("DEL %s: %v", p.Name, err))
			mu.Unlock()
			delRetries.Add(1)
			time.Sleep(100 * time.Millisecond)
		}
	}
	// up adds a pod as a kubelet does: a failed ADD tears the sandbox down (DEL) and tries again in a new one.
	up := func(name string) (*eniPod, error) {
		if err := e.createPod(n, name); err != nil {
			return nil, err
		}
		deadline := time.Now().Add(2 * time.Minute)
		for {
			p, err := e.sandbox(n, name)
			if err != nil {
				return nil, err
			}
			wasDown := down.Load()
			err = e.add(p)
			if err == nil {
				take(p)
				return p, nil
			}
			if !wasDown && !down.Load() {
				mu.Lock()
				upFails = append(upFails, fmt.Sprintf("ADD %s: %v", name, err))
				mu.Unlock()
			}
			if !retryable(err) {
				mu.Lock()
				if wasDown || down.Load() {
					atKill = append(atKill, fmt.Sprintf("ADD %s: %v", name, err))
				} else {
					unexpected = append(unexpected, fmt.Sprintf("ADD %s: %v", name, err))
				}
				mu.Unlock()
			}
			retried.Add(1)
			if derr := del(p); derr != nil {
				return nil, fmt.Errorf("DEL after a failed ADD of %s: %w", name, derr)
			}
			e.dropSandbox(p)
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("ADD %s: still failing after 2 minutes: %w", name, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	down1 := func(p *eniPod) error {
		if err := del(p); err != nil {
			return err
		}
		drop(p)
		e.dropSandbox(p)
		return e.kube.Client.CoreV1().Pods("default").Delete(context.Background(), p.Name, metav1.DeleteOptions{})
	}

	var live []*eniPod
	for i := 0; i < kept; i++ {
		p, err := up(fmt.Sprintf("kept-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		live = append(live, p)
	}

	// Pods to delete while weftd is down: their DELs go through from prevResult alone.
	var doomed []*eniPod
	for i := 0; i < concurrency; i++ {
		p, err := up(fmt.Sprintf("doomed-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		doomed = append(doomed, p)
	}

	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, concurrency+1)
	var killedAt, readyAt atomic.Int64
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= cycles {
					return
				}
				if i == killAt {
					// The crash: SIGKILL; the doomed pods are deleted meanwhile and, once an ADD has failed too,
					// weftd starts again while the others go on.
					down.Store(true)
					n.Daemon.Kill()
					killedAt.Store(int64(time.Since(start)))
					before := retried.Load()
					for _, p := range doomed {
						if err := e.rts[n.Name].Del(context.Background(), p.Sandbox); err != nil {
							errc <- fmt.Errorf("DEL %s while weftd is down: %w", p.Name, err)
							return
						}
						outageDels.Add(1)
						drop(p)
						e.dropSandbox(p)
						_ = e.kube.Client.CoreV1().Pods("default").Delete(context.Background(), p.Name, metav1.DeleteOptions{})
					}
					_ = lab.WaitFor(20*time.Second, "an ADD during the outage", func() (bool, error) { return retried.Load() > before, nil })
					e.startENI(n, port)
					go func() {
						_ = lab.WaitFor(60*time.Second, "weftd back", func() (bool, error) {
							code, _ := readyz(n, port)
							return code == 200, nil
						})
						down.Store(false)
						readyAt.Store(int64(time.Since(start)))
					}()
				}
				p, err := up(fmt.Sprintf("churn-%d", i))
				if err == nil {
					err = down1(p)
				}
				if err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	took := time.Since(start)
	for err := range errc {
		t.Error(err)
	}
	t.Logf("%d ADD/DEL cycles at concurrency %d in %s (%.1f/s), %d kept alive; weftd killed at %s, ready again at %s; %d ADDs failed and were retried, %d DELs went through while weftd was down, %d DELs retried",
		cycles, concurrency, took.Round(time.Millisecond), float64(cycles)/took.Seconds(), kept, time.Duration(killedAt.Load()).Round(time.Millisecond),
		time.Duration(readyAt.Load()).Round(time.Millisecond), retried.Load(), outageDels.Load(), delRetries.Load())
	if len(atKill) > 0 {
		t.Logf("requests weftd died in the middle of (a kubelet retries them): %d: %v", len(atKill), atKill)
	}
	if len(double) > 0 {
		t.Errorf("addresses held twice: %v", double)
	}
	if len(upFails) > 0 {
		t.Errorf("%d ADDs failed while weftd was up, on a node with room: %v", len(upFails), upFails)
	}
	if len(unexpected) > 0 {
		t.Errorf("ADDs failed with a non-retryable error: %v", unexpected)
	}
	if retried.Load() == 0 || outageDels.Load() == 0 {
		t.Errorf("the crash was not exercised: %d ADDs retried, %d DELs while down", retried.Load(), outageDels.Load())
	}
	e.waitReady(n, 60*time.Second)
	if evs := e.eventsOf(n.Name, "PodAddressLost"); len(evs) > 0 {
		t.Errorf("no ENI left the node, yet it reported pods as lost: %q", evs[0].Message)
	}
	for _, p := range live {
		if err := e.rts[n.Name].Check(context.Background(), p.Sandbox); err != nil {
			t.Errorf("CHECK of %s, kept alive across the crash: %v", p.Name, err)
		}
	}
	if err := live[0].ping(live[kept-1].IP); err != nil {
		t.Errorf("kept pods after the churn: %s -> %s: %v", live[0].Name, live[kept-1].IP, err)
	}
	// The DELs weftd missed and the ADDs it answered as it died left Assigned records: the runtime's GC frees them.
	gcStart := time.Now()
	e.gcUntil(t, n, live, 2*time.Minute)
	t.Logf("GC collected the crash's leftovers in %s", time.Since(gcStart).Round(time.Millisecond))
	e.agreeSoon(t, n, "i-alisim0001", live)
}

// TestENIRestartAdopts: weftd stopped (SIGTERM) and started again with pods alive keeps their addresses (CHECK
// passes through the runtime), makes no new ENI, and pod traffic flows while it is down and after; a pod deleted
// while weftd was down (its DEL went through from prevResult alone) is collected by the runtime's GC.
func TestENIRestartAdopts(t *testing.T) {
	t.Parallel()
	const port = 10420
	e := newENIEnv(t, 1, nil) // i-alisim0002 is the outside instance, 192.168.1.11
	e.keepLogs()
	n := e.nodes[0]
	e.startENI(n, port)
	e.waitReady(n, 90*time.Second)
	ctx := context.Background()
	gone, err := e.addPod(n, "gone") // first: its allocation must be a minute old for GC
	if err != nil {
		t.Fatal(err)
	}
	var pods []*eniPod
	for i := 0; i < 3; i++ {
		p, err := e.addPod(n, fmt.Sprintf("r%d", i))
		if err != nil {
			t.Fatalf("pod %d: %v", i, err)
		}
		pods = append(pods, p)
	}
	before := map[string]bool{}
	for _, x := range e.enisOf("i-alisim0001") {
		before[x.ID] = true
	}
	traffic := func(when string) {
		t.Helper()
		for _, c := range []struct {
			from *eniPod
			to   string
		}{{pods[0], pods[1].IP}, {pods[1], pods[2].IP}, {pods[2], "192.168.1.11"}, {pods[0], "192.168.0.10"}} {
			if err := lab.WaitFor(5*time.Second, "ping", func() (bool, error) { return c.from.ping(c.to) == nil, nil }); err != nil {
				t.Errorf("%s: %s -> %s: %v", when, c.from.Name, c.to, err)
			}
		}
	}
	traffic("before the restart")

	if err := n.Daemon.Stop(); err != nil {
		t.Logf("weftd's exit on SIGTERM: %v", err)
	}
	traffic("while weftd is down")
	if err := e.delPod(gone); err != nil {
		t.Fatalf("DEL while weftd is down: %v", err)
	}
	e.startENI(n, port)
	e.waitReady(n, 60*time.Second)
	traffic("after the restart")
	for _, p := range pods {
		if err := e.rts[n.Name].Check(ctx, p.Sandbox); err != nil {
			t.Errorf("CHECK %s after the restart: %v", p.Name, err)
		}
	}
	after := map[string]bool{}
	for _, x := range e.enisOf("i-alisim0001") {
		after[x.ID] = true
		if !before[x.ID] {
			t.Errorf("the restart made a new ENI %s", x.ID)
		}
	}
	if len(after) != len(before) {
		t.Errorf("ENIs before the restart %v, after %v", before, after)
	}
	if r, ok := assignedOf(e.checkpointOf(n))[gone.ContainerID]; !ok {
		t.Logf("the pod deleted while weftd was down holds no address after the restart")
	} else {
		t.Logf("the pod deleted while weftd was down still holds %s after the restart: for GC", r.IP)
	}
	gcStart := time.Now()
	e.gcUntil(t, n, pods, 90*time.Second)
	t.Logf("GC collected %s's address %s in %s", gone.Name, gone.IP, time.Since(gcStart).Round(time.Millisecond))
	e.agreeSoon(t, n, "i-alisim0001", pods)
	// The collected address cools down, then serves again: nothing is lost for good.
	var rec checkpoint.Record
	for _, r := range e.checkpointOf(n).Records {
		if r.IP.String() == gone.IP {
			rec = r
		}
	}
	if rec.State != checkpoint.Cooldown {
		t.Errorf("the collected address %s is %q in the checkpoint, want Cooldown", gone.IP, rec.State)
	}
}

// TestENIDetachedBehindBack: an ENI holding pods is detached in the console. weftd notices within seconds (the
// host loop sees its link go), reports every pod on it (an Event PodAddressLost naming them, and the log), and
// never hands their addresses to another pod.
func TestENIDetachedBehindBack(t *testing.T) {
	t.Parallel()
	const port = 10430
	e := newENIEnv(t, 1, nil)
	e.keepLogs()
	n := e.nodes[0]
	e.startENI(n, port)
	e.waitReady(n, 90*time.Second)
	var pods []*eniPod
	for i := 0; i < 3; i++ {
		p, err := e.addPod(n, fmt.Sprintf("d%d", i))
		if err != nil {
			t.Fatalf("pod %d: %v", i, err)
		}
		pods = append(pods, p)
	}
	enis := e.enisOf("i-alisim0001")
	victim := eniHolding(enis, pods[2].IP)
	var lost, kept []*eniPod
	for _, p := range pods {
		if eniHolding(enis, p.IP) == victim {
			lost = append(lost, p)
		} else {
			kept = append(kept, p)
		}
	}
	t.Logf("detaching %s, which holds %d of the 3 pods", victim, len(lost))
	detached := time.Now()
	if err := e.world.ConsoleDetach(victim); err != nil {
		t.Fatal(err)
	}
	var seen []string
	if err := lab.WaitFor(30*time.Second, "an Event PodAddressLost naming every pod of "+victim, func() (bool, error) {
		seen = nil
		for _, ev := range e.eventsOf(n.Name, "PodAddressLost") {
			seen = append(seen, ev.Message)
		}
		all := strings.Join(seen, "\n")
		for _, p := range lost {
			if !strings.Contains(all, "default/"+p.Name) || !strings.Contains(all, p.IP) {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		t.Fatalf("%v: Events %q\n%s", err, seen, tailN(n.Daemon.Logs(), 20))
	}
	t.Logf("weftd reported the pods %s after the detach: %q", time.Since(detached).Round(time.Millisecond), seen)
	for _, p := range lost {
		if !strings.Contains(n.Daemon.Logs(), "default/"+p.Name) {
			t.Errorf("the log does not name the pod %s", p.Name)
		}
	}
	// The pods elsewhere are fine.
	for _, p := range kept {
		if err := p.ping("192.168.0.10"); err != nil {
			t.Errorf("pod %s on another ENI -> its node: %v", p.Name, err)
		}
	}
	// A new pod never gets a lost pod's address, whatever becomes of the ENI.
	lostIP := map[string]string{}
	for _, p := range lost {
		lostIP[p.IP] = p.Name
	}
	p, err := e.addPod(n, "d3")
	if err != nil {
		t.Logf("a new pod after the detach: %v", err)
	} else if lostIP[p.IP] != "" {
		t.Errorf("the new pod got %s, the address of %s, whose ENI was detached", p.IP, lostIP[p.IP])
	}
	// weftd attaches its own ENI again (as it does one left detached by a crash): the pods get their network
	// back with their addresses.
	if err := lab.WaitFor(60*time.Second, victim+" attached again and its pods' traffic back", func() (bool, error) {
		w, ok := e.world.ENI(victim)
		return ok && w.Status == "InUse" && lost[0].ping("192.168.0.10") == nil, nil
	}); err != nil {
		t.Errorf("%v\n%s", err, tailN(n.Daemon.Logs(), 20))
	}
	for _, p := range lost {
		if err := e.rts[n.Name].Check(context.Background(), p.Sandbox); err != nil {
			t.Errorf("CHECK %s after its ENI came back: %v", p.Name, err)
		}
	}
	for _, r := range e.checkpointOf(n).Records {
		if name := lostIP[r.IP.String()]; name != "" && r.PodName != name {
			t.Errorf("the checkpoint gives %s, %s's address, to %s/%s (%s)", r.IP, name, r.PodNamespace, r.PodName, r.State)
		}
	}
}

// TestENIVSwitchExhaustion: zone cn-hangzhou-h has two configured vSwitches. The first is full, so the node's
// ENI is made in the second (fail-over) and the node becomes ready. Then both are full: a fresh node says so
// (Event VSwitchExhausted, /readyz and the NetworkUnavailable condition name it) while GC goes on on the first
// node; addresses given back in the VPC let the fresh node recover with no restart.
func TestENIVSwitchExhaustion(t *testing.T) {
	t.Parallel()
	const (
		port1, port2 = 10440, 10441
		vsw1, vsw3   = "vsw-alisim0001", "vsw-alisim0003"
	)
	e := newENIEnv(t, 2, func(st *sim.State) {
		st.VSwitches = append(st.VSwitches, &sim.VSwitch{ID: vsw3, VPCID: "vpc-alisim0001", Zone: "cn-hangzhou-h", CIDR: "192.168.2.0/24", RouteTableID: "vtb-alisim0001"})
		st.RouteTables[0].Entries = append(st.RouteTables[0].Entries, &sim.RouteEntry{ID: "rte-sys-vsw3", Dst: "192.168.2.0/24", NextHopType: "local", Type: "System"})
		// The second node in zone h as well.
		in := st.Instances[1]
		in.Zone, in.VSwitchID, in.PrimaryIP, in.Type = "cn-hangzhou-h", vsw1, "192.168.0.11", e2eENIType
	})
	e.keepLogs()
	inner := e.conf
	e.conf = func(n *lab.Node) string {
		c := strings.Replace(inner(n), `"cn-hangzhou-h":["vsw-alisim0001"]`, `"cn-hangzhou-h":["vsw-alisim0001","vsw-alisim0003"]`, 1)
		return strings.Replace(c, `"Type":"eni",`, `"Type":"eni","vswitch_selection_policy":"ordered",`, 1) // fail-over in order
	}
	n1, n2 := e.nodes[0], e.nodes[1]
	if _, err := e.world.FillVSwitch(vsw1, 0); err != nil {
		t.Fatal(err)
	}
	e.startENI(n1, port1)
	e.waitReady(n1, 90*time.Second)
	var enis []aliyun.ENI
	for _, x := range e.enisOf("i-alisim0001") {
		if x.Tags["weft.io/cluster"] == "" {
			continue // the instance's primary ENI
		}
		enis = append(enis, x)
		if x.VSwitchID != vsw3 {
			t.Errorf("ENI %s is in %s, want %s (the first vSwitch is full)", x.ID, x.VSwitchID, vsw3)
		}
	}
	if len(enis) == 0 {
		t.Fatal("n1 is ready with no ENI")
	}
	if err := lab.WaitFor(10*time.Second, "n1: an Event VSwitchExhausted naming "+vsw1, func() (bool, error) {
		evs := e.eventsOf(n1.Name, "VSwitchExhausted")
		return len(evs) > 0 && strings.Contains(evs[0].Message, vsw1), nil
	}); err != nil {
		t.Error(err)
	}
	orphan, err := e.addPod(n1, "orphan") // its DEL never comes: GC's work
	if err != nil {
		t.Fatal(err)
	}
	keep, err := e.addPod(n1, "keep")
	if err != nil {
		t.Fatal(err)
	}

	// Both full now: a fresh node cannot get an ENI, and says why.
	if _, err := e.world.FillVSwitch(vsw3, 0); err != nil {
		t.Fatal(err)
	}
	e.startENI(n2, port2)
	var body string
	if err := lab.WaitFor(60*time.Second, "n2's /readyz names the exhaustion", func() (bool, error) {
		var code int
		code, body = readyz(n2, port2)
		return code != 200 && strings.Contains(body, "VSwitchExhausted") && strings.Contains(body, vsw1) && strings.Contains(body, vsw3), nil
	}); err != nil {
		t.Fatalf("%v: %q\n%s", err, body, tailN(n2.Daemon.Logs(), 20))
	}
	t.Logf("n2 /readyz: %s", strings.TrimSpace(body))
	var cond *corev1.NodeCondition
	if err := lab.WaitFor(20*time.Second, "n2 NetworkUnavailable=True reason VSwitchExhausted", func() (bool, error) {
		cond = e.condition(n2.Name)
		return cond != nil && cond.Status == corev1.ConditionTrue && cond.Reason == "VSwitchExhausted" &&
			strings.Contains(cond.Message, vsw1) && strings.Contains(cond.Message, vsw3), nil
	}); err != nil {
		t.Errorf("%v: %+v", err, cond)
	}
	if err := lab.WaitFor(10*time.Second, "n2: an Event VSwitchExhausted", func() (bool, error) {
		return len(e.eventsOf(n2.Name, "VSwitchExhausted")) > 0, nil
	}); err != nil {
		t.Error(err)
	}

	// GC goes on meanwhile on n1: the runtime lost the orphan (its cached result gone, so no DEL comes); its
	// address is freed by weftd's GC once a minute old, and its veth by the plugin's.
	e.forget(n1, orphan)
	_ = e.kube.Client.CoreV1().Pods("default").Delete(context.Background(), orphan.Name, metav1.DeleteOptions{})
	e.gcUntil(t, n1, []*eniPod{keep}, 90*time.Second)

	// Addresses given back in the VPC: n2 recovers on its own.
	if _, err := e.world.ReleaseReserved(vsw3, 8); err != nil {
		t.Fatal(err)
	}
	released := time.Now()
	e.waitReady(n2, 90*time.Second)
	t.Logf("n2 ready %s after addresses were freed in %s", time.Since(released).Round(time.Millisecond), vsw3)
	if err := lab.WaitFor(20*time.Second, "n2 NetworkUnavailable=False", func() (bool, error) {
		cond = e.condition(n2.Name)
		return cond != nil && cond.Status == corev1.ConditionFalse, nil
	}); err != nil {
		t.Errorf("%v: %+v", err, cond)
	}
	p, err := e.addPod(n2, "after")
	if err != nil {
		t.Fatalf("a pod on n2 after the recovery: %v", err)
	}
	if err := lab.WaitFor(10*time.Second, "ping", func() (bool, error) { return p.ping(keep.IP) == nil, nil }); err != nil {
		t.Errorf("n2's pod -> n1's pod: %v", err)
	}
}
