package lab

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// SubnetFile is the node's subnet.env.
func (n *Node) SubnetFile() string { return filepath.Join(n.Dir, "subnet.env") }

// DaemonOptions choose the daemon and its mode.
type DaemonOptions struct {
	Binary     string   // weftd or flanneld (full path)
	Kube       *Kube    // Kubernetes mode when set
	NetConf    string   // net-conf.json (Kubernetes mode: written to a file)
	HealthPort int      // 0: none
	Extra      []string // more flags
}

// StartDaemon starts weftd or flanneld in the node namespace with the common flags.
func (n *Node) StartDaemon(o DaemonOptions) (*Proc, error) {
	args := []string{"--iface=eth0", "--subnet-file=" + n.SubnetFile(), "--ip-masq", "--iptables-resync=1"}
	var env []string
	if o.Kube != nil {
		conf := filepath.Join(n.Dir, "net-conf.json")
		if err := os.WriteFile(conf, []byte(o.NetConf), 0o644); err != nil {
			return nil, err
		}
		args = append(args, "--kube-subnet-mgr", "--kubeconfig-file="+o.Kube.Kubeconfig, "--net-config-path="+conf)
		env = append(env, "NODE_NAME="+n.Name)
	} else {
		args = append(args, "--etcd-endpoints="+n.Lab.EtcdURL)
	}
	if o.HealthPort != 0 {
		args = append(args, "--healthz-ip=127.0.0.1", "--healthz-port="+strconv.Itoa(o.HealthPort))
	}
	args = append(args, o.Extra...)
	p, err := n.Lab.Start(n.Name, filepath.Join(n.Dir, filepath.Base(o.Binary)+".log"), env, o.Binary, args...)
	if err != nil {
		return nil, err
	}
	n.Daemon = p
	return p, nil
}

// WaitSubnetEnv waits until the daemon has written subnet.env and returns its content.
func (n *Node) WaitSubnetEnv(timeout time.Duration) (string, error) {
	var content string
	err := WaitFor(timeout, n.Name+" subnet.env", func() (bool, error) {
		if n.Daemon != nil && n.Daemon.Exited() {
			return false, fmt.Errorf("daemon exited:\n%s", tail(n.Daemon.Logs()))
		}
		b, err := os.ReadFile(n.SubnetFile())
		content = string(b)
		return err == nil && strings.Contains(content, "FLANNEL_MTU"), err
	})
	return content, err
}

// EnvValue returns one KEY's value from the node's subnet.env.
func (n *Node) EnvValue(key string) string {
	b, _ := os.ReadFile(n.SubnetFile())
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// Readyz fetches the daemon's /readyz (HealthPort must have been set).
func (n *Node) Readyz(port int) (int, string, error) {
	return HTTPGet(n.Name, fmt.Sprintf("http://127.0.0.1:%d/readyz", port))
}

// IP runs `ip` in the node namespace.
func (n *Node) IP(args ...string) string {
	out, err := NSRun(n.Name, append([]string{"ip"}, args...)...)
	if err != nil {
		return err.Error()
	}
	return out
}

// VtepMAC returns the MAC of the node's flannel.1 device, or "".
func (n *Node) VtepMAC() string {
	out, err := NSRun(n.Name, "cat", "/sys/class/net/flannel.1/address")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(out)
}

// Pod is a pod namespace wired by CNI.
type Pod struct {
	Node   *Node
	Name   string
	IP4    string
	IP6    string
	net    string
	confD  string
	binDir string
}

// CNIOptions choose the meta-plugin for a pod.
type CNIOptions struct {
	// Plugin is the path of the "flannel" meta-plugin binary (weft's, or upstream's).
	Plugin string
}

// AddPod creates a pod namespace and runs CNI ADD through the flannel meta-plugin with the reference plugins.
func (n *Node) AddPod(name string, o CNIOptions) (*Pod, error) {
	l := n.Lab
	binDir := filepath.Join(n.Dir, "cni-bin-"+filepath.Base(filepath.Dir(o.Plugin))+"-"+filepath.Base(o.Plugin))
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return nil, err
	}
	links := map[string]string{"flannel": o.Plugin}
	for _, p := range []string{"bridge", "host-local", "loopback", "portmap"} {
		links[p] = filepath.Join(l.O.ToolsBin, p)
	}
	for name, target := range links {
		dst := filepath.Join(binDir, name)
		if _, err := os.Lstat(dst); err == nil {
			continue
		}
		if err := os.Symlink(target, dst); err != nil {
			return nil, err
		}
	}
	confD := filepath.Join(n.Dir, "net.d-"+name)
	if err := os.MkdirAll(confD, 0o755); err != nil {
		return nil, err
	}
	// The meta-plugin fills ranges/routes into the top-level ipam (lab.md pitfall 7).
	conf := map[string]any{
		"cniVersion": "0.4.0", "name": "weftnet", "type": "flannel",
		"subnetFile": n.SubnetFile(), "dataDir": filepath.Join(n.Dir, "flannel-cni"),
		"ipam":     map[string]any{"type": "host-local", "dataDir": filepath.Join(n.Dir, "ipam")},
		"delegate": map[string]any{"bridge": "cni0", "isDefaultGateway": true, "hairpinMode": true},
	}
	b, _ := json.Marshal(conf)
	if err := os.WriteFile(filepath.Join(confD, "10-weftnet.conf"), b, 0o644); err != nil {
		return nil, err
	}
	p := &Pod{Node: n, Name: fmt.Sprintf("%s-%s", n.Name, name), net: "weftnet", confD: confD, binDir: binDir}
	if _, err := Run("ip", "netns", "add", p.Name); err != nil {
		return nil, err
	}
	_, _ = NSRun(p.Name, "ip", "link", "set", "lo", "up")
	out, err := p.cnitool("add")
	if err != nil {
		_, _ = Run("ip", "netns", "del", p.Name)
		return nil, err
	}
	var res struct {
		IPs []struct {
			Address string `json:"address"`
		} `json:"ips"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		return nil, fmt.Errorf("cnitool result %q: %w", out, err)
	}
	for _, ip := range res.IPs {
		a, _, _ := strings.Cut(ip.Address, "/")
		if strings.Contains(a, ":") {
			p.IP6 = a
		} else {
			p.IP4 = a
		}
	}
	l.mu.Lock()
	l.pods = append(l.pods, p)
	l.mu.Unlock()
	return p, nil
}

func (p *Pod) cnitool(cmd string) (string, error) {
	return Run("ip", "netns", "exec", p.Node.Name, "env", "CNI_PATH="+p.binDir, "NETCONFPATH="+p.confD, "CNI_IFNAME=eth0",
		filepath.Join(p.Node.Lab.O.ToolsBin, "cnitool"), cmd, p.net, "/var/run/netns/"+p.Name)
}

func (p *Pod) del() error {
	_, err := p.cnitool("del")
	_, _ = Run("ip", "netns", "del", p.Name)
	return err
}

// Check runs CNI CHECK for the pod.
func (p *Pod) Check() error {
	_, err := p.cnitool("check")
	return err
}

// Ping sends count pings from the pod to ip; it returns nil when at least one reply came back.
func (p *Pod) Ping(ip string, count int) error {
	_, err := NSRun(p.Name, "ping", "-c", strconv.Itoa(count), "-W", "1", "-i", "0.2", ip)
	return err
}
