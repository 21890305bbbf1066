package main

// The topology: a lab node namespace running the real weftd in Kubernetes mode (vxlan, NetworkPolicy on, as
// the ServiceAccount of dist/rbac.yaml) against etcd and kube-apiserver in the lab's underlay, and two pod
// namespaces routed through the node (veth pairs, /32 routes, as internal/policy/ruleset's kernel test builds
// them). Everything it makes is registered so that cleanup removes it, also when the run is interrupted.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/weftnet/weft/internal/lab"
)

const (
	healthPort = 10680
	podCIDR    = "10.244.1.0/24"
	netConf    = `{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}`
	serverIP   = "10.244.1.2"
	clientIP   = "10.244.1.3"
)

type env struct {
	prefix, dir string
	keep        bool
	lab         *lab.Lab
	node        *lab.Node
	kube        *lab.Kube
	cs          kubernetes.Interface // admin, 500 QPS: the bench's own writes are not what is measured
	sa          string               // kubeconfig of dist/rbac.yaml's ServiceAccount
	weftd       *lab.Proc

	mu      sync.Mutex
	closed  bool
	netns   []string
	procs   []*exec.Cmd
	cleaned sync.Once
}

// setup starts the services, the node and weftd; on an error what it made is left for cleanup.
func (e *env) setup(toolsBin, weftd, rbac string) error {
	for _, b := range []string{weftd, filepath.Join(toolsBin, "etcd"), filepath.Join(toolsBin, "kube-apiserver")} {
		if _, err := os.Stat(b); err != nil {
			return fmt.Errorf("needed binary: %w (make build; tools/build.sh etcd k8s)", err)
		}
	}
	dir, err := os.MkdirTemp("", "weft-bench-policy-")
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.dir = dir
	e.mu.Unlock()
	l, err := lab.New(lab.Options{Nodes: 1, Dir: dir, ToolsBin: toolsBin, Prefix: e.prefix})
	e.mu.Lock()
	e.lab = l
	closed := e.closed
	e.mu.Unlock()
	if err != nil {
		return err
	}
	if closed {
		l.Down()
		return fmt.Errorf("interrupted")
	}
	e.node = l.Nodes[0]
	if err := l.StartEtcd(); err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	if e.kube, err = l.StartKube(); err != nil {
		return fmt.Errorf("kube-apiserver: %w", err)
	}
	cfg := *e.kube.Config
	cfg.QPS, cfg.Burst = 500, 1000
	if e.cs, err = kubernetes.NewForConfig(&cfg); err != nil {
		return err
	}
	ctx := context.Background()
	if _, err := e.cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: e.node.Name},
		Spec: corev1.NodeSpec{PodCIDR: podCIDR, PodCIDRs: []string{podCIDR}}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "sa"), 0o700); err != nil {
		return err
	}
	if e.sa, err = e.kube.ApplyRBAC(ctx, rbac, filepath.Join(dir, "sa")); err != nil {
		return fmt.Errorf("RBAC %s: %w", rbac, err)
	}
	conf := filepath.Join(e.node.Dir, "net-conf.json")
	if err := os.WriteFile(conf, []byte(netConf), 0o644); err != nil {
		return err
	}
	// weftd's defaults otherwise (no --ip-masq, the default iptables resync): its idle CPU is its own.
	e.weftd, err = l.Start(e.node.Name, filepath.Join(dir, "weftd.log"), []string{"NODE_NAME=" + e.node.Name}, weftd,
		"--kube-subnet-mgr", "--kubeconfig-file="+e.sa, "--net-config-path="+conf, "--iface=eth0",
		"--subnet-file="+e.node.SubnetFile(), "--healthz-ip=127.0.0.1", fmt.Sprintf("--healthz-port=%d", healthPort))
	if err != nil {
		return err
	}
	return lab.WaitFor(90*time.Second, "weftd /readyz", func() (bool, error) {
		if e.weftd.Exited() {
			return false, fmt.Errorf("weftd exited:\n%s", tailLines(e.weftd.Logs(), 20))
		}
		code, body, _ := e.node.Readyz(healthPort)
		return code == 200, fmt.Errorf("readyz %d: %s", code, strings.TrimSpace(body))
	})
}

// namespace creates a namespace and its default ServiceAccount (no controller-manager runs to make it).
func (e *env) namespace(ns *corev1.Namespace) error {
	ctx := context.Background()
	if _, err := e.cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("namespace %s: %w", ns.Name, err)
	}
	_, err := e.cs.CoreV1().ServiceAccounts(ns.Name).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
	return err
}

// createPod creates the Pod object and then its status (the API server ignores status on create).
func (e *env) createPod(p *corev1.Pod, ip string) error {
	ctx := context.Background()
	got, err := e.cs.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	got.Status = running(ip)
	if _, err := e.cs.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("pod %s/%s status: %w", p.Namespace, p.Name, err)
	}
	return nil
}

// podNS makes a pod namespace with ip on eth0, its veth's other end in the node namespace with a /32 route to
// it (the node's side answers as 169.254.1.1, the pod's default gateway).
func (e *env) podNS(name, ip string) (string, error) {
	ns := e.prefix + "-" + name
	e.mu.Lock()
	closed := e.closed
	if !closed {
		e.netns = append(e.netns, ns)
	}
	e.mu.Unlock()
	if closed {
		return "", fmt.Errorf("interrupted")
	}
	host := "v" + name
	steps := [][]string{
		{"netns", "add", ns},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", e.node.Name, "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns},
		{"-n", e.node.Name, "link", "set", host, "up"},
		{"-n", e.node.Name, "addr", "add", "169.254.1.1/32", "dev", host},
		{"-n", e.node.Name, "route", "add", ip + "/32", "dev", host, "scope", "link"},
		{"-n", ns, "addr", "add", ip + "/32", "dev", "eth0"},
		{"-n", ns, "link", "set", "eth0", "up"},
		{"-n", ns, "route", "add", "169.254.1.1/32", "dev", "eth0", "scope", "link"},
		{"-n", ns, "route", "add", "default", "via", "169.254.1.1", "dev", "eth0"},
	}
	for _, s := range steps {
		if _, err := lab.Run("ip", s...); err != nil {
			return "", err
		}
	}
	return ns, nil
}

// serve is a netperf.Starter whose servers cleanup kills when the run is interrupted.
func (e *env) serve(ns string, argv ...string) (func(), error) {
	c := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, fmt.Errorf("interrupted")
	}
	if err := c.Start(); err != nil {
		return nil, err
	}
	e.procs = append(e.procs, c)
	return func() {
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
	}, nil
}

// monitor starts `nft monitor` in the node namespace, killed by cleanup.
func (e *env) monitor() (*monitor, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, fmt.Errorf("interrupted")
	}
	m, err := startMonitor(e.node.Name)
	if err != nil {
		return nil, err
	}
	e.procs = append(e.procs, m.cmd)
	return m, nil
}

// cleanup stops every process and removes every namespace; safe to call twice and from the signal handler.
func (e *env) cleanup() {
	e.cleaned.Do(func() {
		e.mu.Lock()
		e.closed = true
		procs, netns, l := e.procs, e.netns, e.lab
		e.procs, e.netns = nil, nil
		e.mu.Unlock()
		for _, c := range procs {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
		if l != nil {
			l.Down() // weftd, kube-apiserver, etcd, the node and underlay namespaces
		}
		for _, ns := range netns {
			_, _ = lab.Run("ip", "netns", "del", ns)
		}
		if out, err := lab.Run("ip", "netns", "list"); err == nil {
			for _, line := range strings.Split(out, "\n") {
				if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], e.prefix+"-") {
					_, _ = lab.Run("ip", "netns", "del", f[0])
				}
			}
		}
		if e.dir != "" && !e.keep {
			_ = os.RemoveAll(e.dir)
		}
	})
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
