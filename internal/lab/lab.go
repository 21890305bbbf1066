// Package lab builds small multi-node clusters inside network namespaces on one machine, for weft's end-to-end
// tests, its benchmarks and `weft demo`.
//
// A lab has one "underlay" namespace holding a bridge (10.250.0.1/24, fd00:250::1/64) and the cluster's shared
// services (etcd, and kube-apiserver in Kubernetes mode), and one namespace per node joined to the bridge by a
// veth whose node end is eth0 (10.250.0.1N/24). Pods are namespaces too, wired by the CNI chain run inside their
// node's namespace. Every address that carries traffic lives in a namespace the lab created, and Down removes
// everything. Daemons (weftd or upstream flanneld) are started with the same flags either way.
package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/weftnet/weft/internal/nsutil"
)

// Options describe a lab.
type Options struct {
	Nodes    int
	Dir      string // work directory for logs and per-node files
	ToolsBin string // etcd, etcdctl, kube-apiserver, CNI reference plugins, cnitool, flanneld
	WeftBin  string // weftd, flannel (weft's CNI plugin)
	Prefix   string // namespace name prefix; random when empty
	// Detach leaves daemons running when this process exits (weft demo); otherwise they die with it.
	Detach bool
}

// Lab is a running topology.
type Lab struct {
	O        Options
	Underlay string
	Nodes    []*Node
	EtcdURL  string
	// ServiceIP is where etcd and kube-apiserver listen inside Underlay (default UnderlayIP).
	ServiceIP string

	mu    sync.Mutex
	procs []*Proc
	pods  []*Pod
}

// Node is one node namespace.
type Node struct {
	Lab    *Lab
	Index  int
	Name   string // also the netns name and the Kubernetes node name
	Addr   string // IPv4 on eth0
	Addr6  string // IPv6 on eth0
	Dir    string
	Daemon *Proc
}

// Underlay addressing.
const (
	UnderlayIP  = "10.250.0.1"
	UnderlayIP6 = "fd00:250::1"
)

// Run runs a command, returning its combined output in the error.
func Run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// NSRun runs a command inside a namespace.
func NSRun(ns string, args ...string) (string, error) {
	return Run("ip", append([]string{"netns", "exec", ns}, args...)...)
}

func randID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// New builds the namespaces, the bridge and the veths.
func New(o Options) (*Lab, error) {
	if o.Prefix == "" {
		o.Prefix = "w" + randID()
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	l := &Lab{O: o, Underlay: o.Prefix + "-u"}
	steps := [][]string{
		{"netns", "add", l.Underlay},
		{"-n", l.Underlay, "link", "set", "lo", "up"},
		{"-n", l.Underlay, "link", "add", "br0", "type", "bridge"},
		{"-n", l.Underlay, "addr", "add", UnderlayIP + "/24", "dev", "br0"},
		{"-n", l.Underlay, "addr", "add", UnderlayIP6 + "/64", "dev", "br0", "nodad"},
		{"-n", l.Underlay, "link", "set", "br0", "up"},
	}
	for _, s := range steps {
		if _, err := Run("ip", s...); err != nil {
			l.Down()
			return nil, err
		}
	}
	for i := 1; i <= o.Nodes; i++ {
		if _, err := l.AddNode(); err != nil {
			l.Down()
			return nil, err
		}
	}
	return l, nil
}

// AddNode adds one more node namespace to the bridge.
func (l *Lab) AddNode() (*Node, error) {
	i := len(l.Nodes) + 1
	n := &Node{Lab: l, Index: i, Name: fmt.Sprintf("%s-n%d", l.O.Prefix, i), Addr: fmt.Sprintf("10.250.0.%d", 10+i),
		Addr6: fmt.Sprintf("fd00:250::%d", 10+i), Dir: filepath.Join(l.O.Dir, fmt.Sprintf("n%d", i))}
	l.Nodes = append(l.Nodes, n)
	if err := os.MkdirAll(n.Dir, 0o755); err != nil {
		return nil, err
	}
	host := fmt.Sprintf("vh%d", i)
	steps := [][]string{
		{"netns", "add", n.Name},
		{"-n", n.Name, "link", "set", "lo", "up"},
		{"-n", l.Underlay, "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", n.Name},
		{"-n", l.Underlay, "link", "set", host, "master", "br0", "up"},
		{"-n", n.Name, "addr", "add", n.Addr + "/24", "dev", "eth0"},
		{"-n", n.Name, "addr", "add", n.Addr6 + "/64", "dev", "eth0", "nodad"},
		{"-n", n.Name, "link", "set", "eth0", "up"},
		{"-n", n.Name, "route", "add", "default", "via", UnderlayIP},
		{"-n", n.Name, "-6", "route", "add", "default", "via", UnderlayIP6},
	}
	for _, s := range steps {
		if _, err := Run("ip", s...); err != nil {
			return nil, err
		}
	}
	for _, sc := range []string{"net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"} {
		if _, err := NSRun(n.Name, "sysctl", "-qw", sc); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// Down stops every process, deletes pods (CNI DEL first) and namespaces. It is safe to call twice.
func (l *Lab) Down() {
	l.mu.Lock()
	pods, procs := l.pods, l.procs
	l.pods, l.procs = nil, nil
	l.mu.Unlock()
	for _, p := range pods {
		_ = p.del()
	}
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].Kill()
	}
	for _, n := range l.Nodes {
		_, _ = Run("ip", "netns", "del", n.Name)
	}
	_, _ = Run("ip", "netns", "del", l.Underlay)
}

// Proc is a process started in a namespace, logging to a file.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	Log  string
	done chan struct{}
	err  error
}

// Start runs a program in a namespace with its output in dir/<logName>.log.
func (l *Lab) Start(ns, logPath string, env []string, prog string, args ...string) (*Proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, prog}, args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if l.O.Detach {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", prog, err)
	}
	p := &Proc{Name: filepath.Base(prog), Cmd: cmd, Log: logPath, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); f.Close(); close(p.done) }()
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.mu.Unlock()
	return p, nil
}

// Stop sends SIGTERM and waits up to 10 s, then kills. It returns the exit error.
func (p *Proc) Stop() error {
	if p == nil {
		return nil
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.Cmd.Process.Kill()
		<-p.done
	}
	return p.err
}

// Kill kills the process and waits for it.
func (p *Proc) Kill() {
	if p == nil {
		return
	}
	_ = p.Cmd.Process.Kill()
	<-p.done
}

// Exited tells whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Logs returns the process's log so far.
func (p *Proc) Logs() string {
	b, _ := os.ReadFile(p.Log)
	return string(b)
}

// InNS runs fn on an OS thread inside the named namespace. Sockets fn creates stay in that namespace.
func InNS(name string, fn func() error) error { return nsutil.DoNamed(name, fn) }

// DialerIn returns a dialer whose connections are made inside the named namespace (for clients in the test
// process talking to services in the lab, e.g. the kube-apiserver).
func DialerIn(name string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := InNS(name, func() (err error) {
			var d net.Dialer
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

// HTTPGet fetches a URL from inside a namespace.
func HTTPGet(ns, url string) (int, string, error) {
	cl := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DialContext: DialerIn(ns)}}
	resp, err := cl.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String(), nil
}

// WaitFor polls cond every 100 ms until it is true or the timeout passes.
func WaitFor(timeout time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return nil
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	if last != nil {
		return fmt.Errorf("%s: not within %s: %w", what, timeout, last)
	}
	return fmt.Errorf("%s: not within %s", what, timeout)
}

// ErrExited reports a daemon that died while being waited for.
var ErrExited = errors.New("process exited")

// MustIP runs `ip` in a namespace and returns its output (or the error text).
func MustIP(ns string, args ...string) string {
	out, err := NSRun(ns, append([]string{"ip"}, args...)...)
	if err != nil {
		return err.Error()
	}
	return out
}

func (l *Lab) serviceIP() string {
	if l.ServiceIP != "" {
		return l.ServiceIP
	}
	return UnderlayIP
}
