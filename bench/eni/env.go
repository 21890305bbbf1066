package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftnet/weft/cloud/aliyun/sim"
	"github.com/weftnet/weft/internal/lab"
)

// gw is the vSwitch gateway of 192.168.0.0/24, where the OpenAPI endpoint, etcd and kube-apiserver listen inside
// the fabric's router namespace (as in test/e2e).
const gw = "192.168.0.253"

// benchType is the instance type of every node: 7 secondary ENIs x 30 addresses = 210 pods, room for -pods.
const benchType = "ecs.c7.4xlarge"

// env is the cluster the benchmark runs on: alisim (sim.DefaultTiming, metadata at its default lag) in fabric
// mode, etcd and kube-apiserver inside the VPC, and one instance per role. Everything it makes (namespaces,
// processes) is registered so that cleanup removes it, also when the run is interrupted.
type env struct {
	prefix string
	keep   bool // leave dir (logs, checkpoints) in place
	dir    string
	world  *sim.World
	srv    *sim.Server
	fab    *sim.Fabric
	lab    *lab.Lab
	kube   *lab.Kube
	sa     string // kubeconfig of dist/kube-weft-eni.yaml's ServiceAccount
	weftd  string
	plugin string
	stop   context.CancelFunc
	hs     *http.Server

	mu      sync.Mutex
	closed  bool
	netns   []string    // pod namespaces
	procs   []*exec.Cmd // iperf3 / sockperf servers
	podSeq  int
	cleaned sync.Once
}

// node is one instance of the fabric that may run weftd.
type node struct {
	id, name, ip, zone string // instance id, namespace (= Kubernetes node) name, primary address, zone
	dir                string
	port               int // /healthz, /readyz, /metrics
	sock               string
	proc               *lab.Proc
	rt                 *lab.Runtime
}

// pod is a sandbox made through the node's runtime.
type pod struct {
	lab.Sandbox
	ns   string
	ip   string
	node *node
	done time.Time // when ADD answered
}

// instance layout: A (zone h) and B (zone i) are the warm and traffic nodes; P (zone i) takes -pods at once;
// C1..Cn (zone h) are the cold nodes, each used once; XA (zone h) and XB (zone i), last, run exclusive ENI mode
// for the traffic comparison (a node runs one mode).
func buildState(cold int) *sim.State {
	st := sim.DefaultState()
	st.Instances = nil
	add := func(i int, zone, vsw, ip string) {
		st.Instances = append(st.Instances, &sim.Instance{ID: fmt.Sprintf("i-bench%04d", i), Type: benchType, Zone: zone,
			VSwitchID: vsw, PrimaryIP: ip, MAC: fmt.Sprintf("00:16:3e:00:02:%02x", i), Status: "Running",
			Hostname: fmt.Sprintf("bench%d", i), RAMRole: "weft-node"})
	}
	add(1, "cn-hangzhou-h", "vsw-alisim0001", "192.168.0.10")
	add(2, "cn-hangzhou-i", "vsw-alisim0002", "192.168.1.10")
	add(3, "cn-hangzhou-i", "vsw-alisim0002", "192.168.1.11")
	for k := 0; k < cold; k++ {
		add(4+k, "cn-hangzhou-h", "vsw-alisim0001", fmt.Sprintf("192.168.0.%d", 11+k))
	}
	add(4+cold, "cn-hangzhou-h", "vsw-alisim0001", "192.168.0.40")
	add(5+cold, "cn-hangzhou-i", "vsw-alisim0002", "192.168.1.40")
	st.Timing = sim.DefaultTiming
	return st
}

// setup builds the cluster; on an error, what it made is left for cleanup.
func (e *env) setup(toolsBin, weftBin, rbac string, cold int) ([]*node, error) {
	dir, err := os.MkdirTemp("", "weft-bench-eni-")
	if err != nil {
		return nil, err
	}
	prefix := e.prefix
	e.mu.Lock()
	e.dir, e.weftd, e.plugin = dir, filepath.Join(weftBin, "weftd"), filepath.Join(weftBin, "weft-eni")
	e.mu.Unlock()
	for _, b := range []string{e.weftd, e.plugin, filepath.Join(toolsBin, "etcd"), filepath.Join(toolsBin, "kube-apiserver")} {
		if _, err := os.Stat(b); err != nil {
			return nil, fmt.Errorf("needed binary: %w (make build; tools/build.sh etcd k8s cni)", err)
		}
	}
	st := buildState(cold)
	e.world = sim.NewWorld(st, nil, "")
	e.world.SetTiming(sim.DefaultTiming) // ENIs take DefaultTiming.ENITransition to attach; metadata keeps its default lag
	e.srv = sim.NewServer(e.world)
	fab, err := sim.NewFabric(e.world, prefix)
	if err != nil {
		return nil, fmt.Errorf("fabric: %w", err)
	}
	e.mu.Lock()
	e.fab = fab
	e.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	e.stop = cancel
	go e.fab.Run(ctx, 100*time.Millisecond)
	var ln net.Listener
	if err := lab.InNS(e.fab.Router, func() (err error) { ln, err = net.Listen("tcp", gw+":8900"); return err }); err != nil {
		return nil, err
	}
	e.hs = &http.Server{Handler: e.srv, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = e.hs.Serve(ln) }()
	e.lab = &lab.Lab{O: lab.Options{ToolsBin: toolsBin, Dir: dir}, Underlay: e.fab.Router, ServiceIP: gw}
	if err := e.lab.StartEtcd(); err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	if e.kube, err = e.lab.StartKube(); err != nil {
		return nil, fmt.Errorf("kube-apiserver: %w", err)
	}
	bctx := context.Background()
	if err := os.MkdirAll(filepath.Join(dir, "sa"), 0o700); err != nil {
		return nil, err
	}
	if e.sa, err = e.kube.ApplyRBAC(bctx, rbac, filepath.Join(dir, "sa")); err != nil {
		return nil, fmt.Errorf("RBAC %s: %w", rbac, err)
	}
	// No controller-manager runs: the pods' namespace needs its default ServiceAccount made by hand.
	if _, err := e.kube.Client.CoreV1().ServiceAccounts("default").Create(bctx,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	var nodes []*node
	for i, in := range st.Instances {
		n := &node{id: in.ID, name: e.fab.NS[in.ID], ip: in.PrimaryIP, zone: in.Zone, dir: filepath.Join(dir, in.ID), port: 10500 + i}
		n.sock = filepath.Join(n.dir, "eni.sock")
		if err := os.MkdirAll(filepath.Join(n.dir, "cni-bin"), 0o755); err != nil {
			return nil, err
		}
		if err := os.Symlink(e.plugin, filepath.Join(n.dir, "cni-bin", "weft-eni")); err != nil {
			return nil, err
		}
		// Terway's CNI timeout: the plugin waits up to 120 s for weftd's answer. The bandwidth capability as
		// dist/cni/10-weft-eni.conflist declares it (the bench's pods carry no bandwidth annotation).
		list := fmt.Sprintf(`{"cniVersion":"1.1.0","name":"weft","plugins":[{"type":"weft-eni","socket":%q,"timeout":"120s","capabilities":{"bandwidth":true}}]}`, n.sock)
		if n.rt, err = lab.NewRuntime(n.name, filepath.Join(n.dir, "cni-bin"), filepath.Join(n.dir, "cni-cache"), []byte(list)); err != nil {
			return nil, err
		}
		if _, err := e.kube.Client.CoreV1().Nodes().Create(bctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.name}}, metav1.CreateOptions{}); err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

// pool settings: warm nodes run weft's defaults; cold nodes min_pool_size 0 (Terway's chart default), so nothing
// is allocated before the first pod asks and its ADD waits for the ENI to be created and attached.
const (
	warmPool = `"min_pool_size":2,"warm_pool_target":5,"max_pool_size":10`
	coldPool = `"min_pool_size":0,"warm_pool_target":5,"max_pool_size":10`
	// exclusive ENI mode: each pod takes a whole ENI (moved into its namespace), one kept ready ahead.
	exclusivePool = `"Mode":"exclusive","exclusive_warm_enis":1`
	poolTarget    = 5
)

func (e *env) netConf(n *node, poolKeys string) string {
	return fmt.Sprintf(`{"EnableIPv4":true,"Backend":{"Type":"eni","vswitches":{"cn-hangzhou-h":["vsw-alisim0001"],"cn-hangzhou-i":["vsw-alisim0002"]},`+
		`"security_group":"sg-alisim0001","cluster_id":"bench-eni",%s,"checkpoint":%q,"socket":%q}}`,
		poolKeys, filepath.Join(n.dir, "eni", "checkpoint.json"), n.sock)
}

// startWeftd runs weftd (eni) on n under the ServiceAccount and waits until its CNI socket is there.
func (e *env) startWeftd(n *node, poolKeys string) (time.Duration, error) {
	conf := filepath.Join(n.dir, "net-conf.json")
	if err := os.WriteFile(conf, []byte(e.netConf(n, poolKeys)), 0o644); err != nil {
		return 0, err
	}
	t0 := time.Now()
	p, err := e.lab.Start(n.name, filepath.Join(n.dir, "weftd.log"), []string{"VPC_ENDPOINT=" + gw + ":8900", "ECS_ENDPOINT=" + gw + ":8900",
		"ALICLOUD_CLIENT_SCHEME=HTTP", "NODE_NAME=" + n.name, "POD_NAMESPACE=kube-system"}, e.weftd, "--kube-subnet-mgr",
		"--kubeconfig-file="+e.sa, "--net-config-path="+conf, "--iface=eth0", "--subnet-file="+filepath.Join(n.dir, "subnet.env"),
		"--healthz-ip=127.0.0.1", fmt.Sprintf("--healthz-port=%d", n.port), "-v=2")
	if err != nil {
		return 0, err
	}
	n.proc = p
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(n.sock); err == nil {
			return time.Since(t0), nil
		}
		if p.Exited() {
			return 0, fmt.Errorf("weftd on %s exited:\n%s", n.name, tailLines(p.Logs(), 20))
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, fmt.Errorf("weftd on %s: no CNI socket within 90s:\n%s", n.name, tailLines(p.Logs(), 20))
}

func (e *env) waitReady(n *node, timeout time.Duration) error {
	return lab.WaitFor(timeout, n.name+" /readyz", func() (bool, error) {
		if n.proc.Exited() {
			return false, fmt.Errorf("weftd exited:\n%s", tailLines(n.proc.Logs(), 20))
		}
		code, body, _ := lab.HTTPGet(n.name, fmt.Sprintf("http://127.0.0.1:%d/readyz", n.port))
		return code == 200, fmt.Errorf("readyz %d: %s", code, strings.TrimSpace(body))
	})
}

func (e *env) metrics(n *node) (prom, error) {
	code, body, err := lab.HTTPGet(n.name, fmt.Sprintf("http://127.0.0.1:%d/metrics", n.port))
	if err != nil {
		return nil, err
	}
	if code != 200 {
		return nil, fmt.Errorf("/metrics on %s: HTTP %d", n.name, code)
	}
	return parseProm(body), nil
}

// settle waits until n's pool holds its warm target idle and nobody waits (at most timeout); it says whether
// that happened.
func (e *env) settle(n *node, timeout time.Duration) bool {
	return lab.WaitFor(timeout, "pool settled", func() (bool, error) {
		m, err := e.metrics(n)
		if err != nil {
			return false, err
		}
		return m.get("weft_eni_addresses", "state", "idle") >= poolTarget && m.get("weft_eni_addresses", "state", "waiting") == 0, nil
	}) == nil
}

// newPod creates the Pod object on n and its sandbox namespace (not timed: the runtime has both before ADD).
func (e *env) newPod(n *node, name string) (*pod, error) {
	ctx := context.Background()
	kp := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{NodeName: n.name, Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/pause"}}}}
	if _, err := e.kube.Client.CoreV1().Pods("default").Create(ctx, kp, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("pod %s: %w", name, err)
	}
	e.mu.Lock()
	e.podSeq++
	ns := fmt.Sprintf("%s-p%d", e.prefix, e.podSeq)
	closed := e.closed
	if !closed {
		e.netns = append(e.netns, ns)
	}
	e.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("interrupted")
	}
	if _, err := lab.Run("ip", "netns", "add", ns); err != nil {
		return nil, err
	}
	_, _ = lab.NSRun(ns, "ip", "link", "set", "lo", "up")
	p := &pod{ns: ns, node: n}
	p.Sandbox = lab.Sandbox{ContainerID: randomID(), Netns: "/var/run/netns/" + ns, Namespace: "default", Name: name}
	return p, nil
}

// add runs CNI ADD through libcni and returns how long it took.
func (e *env) add(p *pod) (time.Duration, error) {
	t0 := time.Now()
	res, err := p.node.rt.Add(context.Background(), p.Sandbox)
	p.done = time.Now()
	d := p.done.Sub(t0)
	if err != nil {
		return d, fmt.Errorf("ADD %s on %s: %w", p.Name, p.node.name, err)
	}
	for _, ip := range res.IPs {
		if ip.Address.IP.To4() != nil {
			p.ip = ip.Address.IP.String()
		}
	}
	if p.ip == "" {
		return d, fmt.Errorf("ADD %s: no IPv4 address in the result", p.Name)
	}
	return d, nil
}

func (e *env) del(p *pod) error {
	err := p.node.rt.Del(context.Background(), p.Sandbox)
	_, _ = lab.Run("ip", "netns", "del", p.ns)
	_ = e.kube.Client.CoreV1().Pods("default").Delete(context.Background(), p.Name, metav1.DeleteOptions{})
	return err
}

// startServer starts a traffic server inside ns, killed by cleanup if the run is interrupted.
func (e *env) startServer(ns string, args ...string) (*exec.Cmd, error) {
	c := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, fmt.Errorf("interrupted")
	}
	if err := c.Start(); err != nil {
		return nil, err
	}
	e.procs = append(e.procs, c)
	return c, nil
}

func (e *env) stopServer(c *exec.Cmd) {
	_ = c.Process.Kill()
	_ = c.Wait()
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, p := range e.procs {
		if p == c {
			e.procs = append(e.procs[:i], e.procs[i+1:]...)
			break
		}
	}
}

// cleanup stops every process and removes every namespace the run made; safe to call twice and from the signal
// handler while the run goes on (what the run makes afterwards is refused).
func (e *env) cleanup() {
	e.cleaned.Do(func() {
		e.mu.Lock()
		e.closed = true
		procs, netns := e.procs, e.netns
		e.procs, e.netns = nil, nil
		e.mu.Unlock()
		for _, c := range procs {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
		if e.lab != nil {
			e.lab.Down() // weftd, kube-apiserver, etcd
		}
		for _, ns := range netns {
			_, _ = lab.Run("ip", "netns", "del", ns)
		}
		if e.stop != nil {
			e.stop()
		}
		if e.hs != nil {
			_ = e.hs.Close()
		}
		if e.fab != nil {
			e.fab.Close()
		}
		// Namespaces made while cleanup ran (an interrupted setup) carry the prefix too.
		if out, err := lab.Run("ip", "netns", "list"); err == nil {
			for _, l := range strings.Split(out, "\n") {
				if f := strings.Fields(l); len(f) > 0 && strings.HasPrefix(f[0], e.prefix+"-") {
					_, _ = lab.Run("ip", "netns", "del", f[0])
				}
			}
		}
		if e.dir != "" && !e.keep {
			_ = os.RemoveAll(e.dir)
		}
	})
}

// eniTimes is one ENI of an instance as the emulator has it: when it was created and when it became InUse.
type eniTimes struct {
	id             string
	created, inUse time.Time
	addrs          []string
}

// enisTimeline lists an instance's ENIs from the emulator's state (no API call).
func (e *env) enisTimeline(instance string) []eniTimes {
	b, err := e.world.Dump()
	if err != nil {
		return nil
	}
	var st struct {
		ENIs []struct {
			ID         string               `json:"id"`
			InstanceID string               `json:"instanceId"`
			PrimaryIP  string               `json:"primaryIp"`
			Secondary  []string             `json:"secondary"`
			Created    time.Time            `json:"creationTime"`
			Since      map[string]time.Time `json:"since"`
		} `json:"enis"`
	}
	if json.Unmarshal(b, &st) != nil {
		return nil
	}
	var out []eniTimes
	for _, x := range st.ENIs {
		if x.InstanceID == instance {
			out = append(out, eniTimes{id: x.ID, created: x.Created, inUse: x.Since["attached"], addrs: append([]string{x.PrimaryIP}, x.Secondary...)})
		}
	}
	// CreationTime has the API's one-second resolution: ENIs are ordered by when they became InUse (the agent
	// creates and attaches one at a time), and their creation is taken from the write audit, in the same order.
	sort.Slice(out, func(i, j int) bool { return out[i].inUse.Before(out[j].inUse) })
	ws, _ := e.world.Writes()
	k := 0
	for _, w := range ws {
		if w.Instance == instance && w.Action == "CreateNetworkInterface" && w.Lost == "" && k < len(out) {
			out[k].created = w.At
			k++
		}
	}
	return out
}

// enisOf counts the ENIs attached to an instance (primary excluded) and the addresses they carry, from the
// emulator's state (no API call, so the call counts stay the agents' own).
func (e *env) enisOf(instance string) (enis, addrs int) {
	b, err := e.world.Dump()
	if err != nil {
		return 0, 0
	}
	var st struct {
		ENIs []struct {
			InstanceID string   `json:"instanceId"`
			Secondary  []string `json:"secondary"`
		} `json:"enis"`
	}
	if json.Unmarshal(b, &st) != nil {
		return 0, 0
	}
	for _, x := range st.ENIs {
		if x.InstanceID == instance {
			enis++
			addrs += 1 + len(x.Secondary)
		}
	}
	return enis, addrs
}

func randomID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
