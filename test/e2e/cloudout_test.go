package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weftnet/weft/cloud/aliyun/sim"
	"github.com/weftnet/weft/internal/lab"
	"github.com/weftnet/weft/internal/testenv"
)

// cloudOutage is how long each outage lasts: the 60 s shortened, as every state (the leader's first
// failed pass, its retries, the followers' statuses standing) is reached well within it.
const cloudOutage = 20 * time.Second

// idleCPUShare is the most CPU a weftd may use while the API is out: 0.5 s per 20 s, an idle daemon's.
const idleCPUShare = 0.025

// minCPUAllowance is the CPU any phase may use however short it is (start-up of a pass, a log line, the probes).
const minCPUAllowance = 500 * time.Millisecond

// cloudSwitch is the OpenAPI endpoint at addr inside the router namespace, in front of a handler the test
// swaps (alisim, garbage); stop closes its listener and every connection (the API is gone: connections are
// refused), serve listens again on the same address.
type cloudSwitch struct {
	t        *testing.T
	ns, addr string
	handler  atomic.Pointer[http.Handler]
	requests atomic.Int64

	mu sync.Mutex
	hs *http.Server
}

func newCloudSwitch(t *testing.T, ns, addr string, h http.Handler) *cloudSwitch {
	c := &cloudSwitch{t: t, ns: ns, addr: addr}
	c.set(h)
	c.serve()
	t.Cleanup(c.stop)
	return c
}

func (c *cloudSwitch) set(h http.Handler) { c.handler.Store(&h) }

func (c *cloudSwitch) serve() {
	c.t.Helper()
	var ln net.Listener
	if err := lab.InNS(c.ns, func() (err error) { ln, err = net.Listen("tcp", c.addr); return err }); err != nil {
		c.t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.requests.Add(1)
		(*c.handler.Load()).ServeHTTP(w, r)
	})}
	go func() { _ = hs.Serve(ln) }()
	c.mu.Lock()
	c.hs = hs
	c.mu.Unlock()
}

func (c *cloudSwitch) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hs != nil {
		_ = c.hs.Close()
		c.hs = nil
	}
}

// startOn starts weftd (ali-vpc, etcd mode) on n with the OpenAPI at endpoint.
func (e *vpcEnv) startOn(n *lab.Node, port int, endpoint string) {
	e.t.Helper()
	p, err := e.lab.Start(n.Name, n.Dir+"/weftd.log", []string{"VPC_ENDPOINT=" + endpoint, "QUOTAS_ENDPOINT=" + endpoint, "ALICLOUD_CLIENT_SCHEME=HTTP"},
		e.weftd, "--etcd-endpoints="+e.lab.EtcdURL, "--iface=eth0", "--subnet-file="+n.SubnetFile(), "--ip-masq",
		"--healthz-ip=127.0.0.1", fmt.Sprintf("--healthz-port=%d", port), "-v=2")
	if err != nil {
		e.t.Fatal(err)
	}
	n.Daemon = p
}

// procCPU is the CPU time (user + system) a process has used, from /proc/<pid>/stat.
func procCPU(t *testing.T, p *lab.Proc) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:])) // after "pid (comm) ": state is field 3
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("/proc/%d/stat: %q", p.Cmd.Process.Pid, b)
	}
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

// weftQuota runs `weft quota` inside ns against endpoint with the instance's RAM role, as an operator on a node
// would; it returns the exit code and stderr.
func weftQuota(t *testing.T, ns, endpoint string) (int, string) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, testenv.WeftBin(t, "weft"), "quota", "--region", "cn-hangzhou", "--vpc-id", "vpc-alisim0001", "--timeout", "5s")
	cmd.Env = append(os.Environ(), "VPC_ENDPOINT="+endpoint, "QUOTAS_ENDPOINT="+endpoint, "ALICLOUD_CLIENT_SCHEME=HTTP")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}

// The cloud API stopped, then answering every call after 20 s, then answering garbage: the ali-vpc leader
// reports CloudAPIError with the cause in /readyz and its log within its retries, the follower stays ready
// (its route is in place), neither uses more CPU than an idle daemon, weft quota exits 3 naming the action,
// and when the API is back everything recovers without a restart: the leader is ready again and a route
// deleted during the outage is restored. At the end SIGTERM stops both daemons, the leader in a hung call.
func TestAliVPCCloudOutage(t *testing.T) {
	e := newVPCEnv(t, 2, 200)
	endpoint := gw + ":8901"
	cs := newCloudSwitch(t, e.fab.Router, endpoint, e.srv)
	ports := []int{10420, 10421}
	for i, n := range e.nodes {
		e.startOn(n, ports[i], endpoint)
	}
	allReady := func(within time.Duration, what string) {
		t.Helper()
		for i, n := range e.nodes {
			if err := lab.WaitFor(within, n.Name+" ready "+what, func() (bool, error) { code, _ := readyz(n, ports[i]); return code == 200, nil }); err != nil {
				t.Fatalf("%v; entries %v", err, e.entries())
			}
		}
	}
	allReady(60*time.Second, "at start")
	li := -1
	for i, n := range e.nodes {
		if _, body, _ := lab.HTTPGet(n.Name, fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[i])); strings.Contains(body, "\nweft_route_leader 1\n") {
			li = i
		}
	}
	if li < 0 {
		t.Fatal("no node exports weft_route_leader 1")
	}
	leader, follower := e.nodes[li], e.nodes[1-li]
	lport, fport := ports[li], ports[1-li]
	if code, out := weftQuota(t, follower.Name, endpoint); code != 0 {
		t.Fatalf("weft quota with the API up: exit %d\n%s", code, out)
	}

	// outage runs one fault from start (which breaks the API) until restore, holding it for at least hold.
	outage := func(name string, hold time.Duration, start, restore func(), want ...string) {
		t.Helper()
		cpu0 := []time.Duration{procCPU(t, leader.Daemon), procCPU(t, follower.Daemon)}
		logFrom := len(leader.Daemon.Logs())
		t0 := time.Now()
		start()
		var body string
		if err := lab.WaitFor(2*time.Minute, name+": the leader reports CloudAPIError", func() (bool, error) {
			var code int
			code, body = readyz(leader, lport)
			if code, fb := readyz(follower, fport); code != 200 {
				return false, fmt.Errorf("%s: the follower, whose route is in place, is not ready: %s", name, fb)
			}
			return code == 503 && strings.Contains(body, "CloudAPIError") && containsAll(body, want), nil
		}); err != nil {
			t.Fatalf("%v; last /readyz %q", err, body)
		}
		if log := leader.Daemon.Logs()[logFrom:]; !strings.Contains(log, "reconcile: CloudAPIError") || !containsAll(log, want) {
			t.Errorf("%s: the leader's log lacks CloudAPIError and %q:\n%s", name, want, tailN(log, 10))
		}
		if code, out := weftQuota(t, follower.Name, endpoint); code != 3 || !strings.Contains(out, "DescribeRouteTableList") || !containsAll(out, want) {
			t.Errorf("%s: weft quota: exit %d, want 3 naming DescribeRouteTableList and %q\n%s", name, code, want, out)
		}
		for time.Since(t0) < hold {
			if code, fb := readyz(follower, fport); code != 200 {
				t.Fatalf("%s: the follower is not ready during the outage: %s", name, fb)
			}
			time.Sleep(time.Second)
		}
		elapsed := time.Since(t0)
		for i, p := range []*lab.Node{leader, follower} {
			used := procCPU(t, p.Daemon) - cpu0[i]
			t.Logf("%s: %s used %s of CPU over %s", name, p.Name, used, elapsed.Round(time.Second))
			// The share, with a floor for short phases: the kernel counts CPU in 10 ms ticks, so 50 ms over 1 s reads
			// as 5 %; a daemon spinning while it waits uses a whole core and still exceeds either bound.
			allowed := max(time.Duration(idleCPUShare*float64(elapsed)), minCPUAllowance)
			if used > allowed {
				t.Errorf("%s: %s used %s of CPU over %s, want at most %s (%.1f %% of the time)", name, p.Name, used, elapsed.Round(time.Second), allowed, 100*idleCPUShare)
			}
		}
		restore()
		allReady(2*time.Minute, "after "+name)
		if code, out := weftQuota(t, follower.Name, endpoint); code != 0 {
			t.Errorf("after %s: weft quota: exit %d\n%s", name, code, out)
		}
	}

	outage("API stopped", cloudOutage, cs.stop, cs.serve, "DescribeRouteTableList", "connection refused")
	outage("every answer after 20 s", cloudOutage,
		func() { _ = e.srv.SetFault("*", sim.Fault{Latency: 20 * time.Second}) },
		func() { _ = e.srv.SetFault("*", sim.Fault{}) }, "no answer")
	// Garbage: meanwhile an entry is lost, which only a working leader restores.
	var victim sim.RouteEntry
	outage("HTML answers", cloudOutage, func() {
		cs.set(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<html><body>Service temporarily moved</body></html>")
		}))
		es := e.world.CustomEntries("vtb-alisim0001")
		victim = es[0]
		if err := e.world.DeleteEntry("vtb-alisim0001", victim.ID); err != nil {
			t.Fatal(err)
		}
	}, func() { cs.set(e.srv) }, "the answer is not the API's", "text/html")
	if err := lab.WaitFor(30*time.Second, "the entry deleted during the outage restored", func() (bool, error) {
		for _, x := range e.world.CustomEntries("vtb-alisim0001") {
			if x.Dst == victim.Dst && x.ID != victim.ID && time.Now().After(x.ReadyAt) {
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		t.Fatalf("%v: %v", err, e.entries())
	}
	outage("truncated JSON", 0, func() {
		cs.set(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"RequestId":"r","TotalCount":1,"RouterTableList":{"RouterTab`)
		}))
	}, func() { cs.set(e.srv) }, "not JSON")
	if got := len(e.entries()); got != 2 {
		t.Fatalf("after the outages: %d entries, want 2: %v", got, e.entries())
	}

	// SIGTERM with the leader's call hung: both exit 0 on their own (Stop kills after 10 s; a kill is an error).
	before := cs.requests.Load()
	_ = e.srv.SetFault("*", sim.Fault{Latency: 20 * time.Second})
	if err := lab.WaitFor(30*time.Second, "the leader calls the hung API", func() (bool, error) { return cs.requests.Load() > before, nil }); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	for _, n := range []*lab.Node{leader, follower} {
		if err := n.Daemon.Stop(); err != nil {
			t.Errorf("%s: SIGTERM during a hung cloud call: %v (not exited within 10 s)\n%s", n.Name, err, tailN(n.Daemon.Logs(), 10))
		}
	}
	_ = e.srv.SetFault("*", sim.Fault{})
}

func containsAll(s string, subs []string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}
