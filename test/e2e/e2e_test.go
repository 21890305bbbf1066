// Package e2e runs weft end to end: several node namespaces on an underlay bridge, real daemons (weftd and
// upstream flanneld), etcd and kube-apiserver, pods made through the CNI chain with the reference plugins, and real
// ICMP and TCP traffic between every pair of pods.
package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftnet/weft/internal/lab"
	"github.com/weftnet/weft/internal/testenv"
)

const (
	netV4   = `{"Network":"10.244.0.0/16","Backend":{"Type":"%s"}}`
	netDual = `{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:244::/56","Backend":{"Type":"%s"}}`
)

type env struct {
	t        *testing.T
	lab      *lab.Lab
	weftd    string
	plugin   string // weft's CNI meta-plugin
	upCNI    string // upstream's meta-plugin
	flanneld string
}

func newEnv(t *testing.T, nodes int) *env {
	t.Helper()
	testenv.RequireRoot(t)
	tools := testenv.ToolsDir(t)
	e := &env{t: t, weftd: testenv.WeftBin(t, "weftd"), plugin: testenv.WeftBin(t, "flannel"),
		upCNI: testenv.Bin(t, "flannel-upstream-cni"), flanneld: testenv.Bin(t, "flanneld")}
	testenv.Bin(t, "cnitool")
	l, err := lab.New(lab.Options{Nodes: nodes, Dir: t.TempDir(), ToolsBin: tools})
	if err != nil {
		t.Fatal(err)
	}
	e.lab = l
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range l.Nodes {
				if n.Daemon != nil {
					t.Logf("--- %s %s log:\n%s", n.Name, n.Daemon.Name, tailN(n.Daemon.Logs(), 40))
				}
			}
		}
		l.Down()
	})
	if err := l.StartEtcd(); err != nil {
		t.Fatal(err)
	}
	return e
}

func tailN(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// start starts the given daemon binary on node i and waits for its subnet.env.
func (e *env) start(i int, bin string, o lab.DaemonOptions) {
	e.t.Helper()
	o.Binary = bin
	n := e.lab.Nodes[i]
	if _, err := n.StartDaemon(o); err != nil {
		e.t.Fatal(err)
	}
	if _, err := n.WaitSubnetEnv(30 * time.Second); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) pod(i int, name, plugin string) *lab.Pod {
	e.t.Helper()
	p, err := e.lab.Nodes[i].AddPod(name, lab.CNIOptions{Plugin: plugin})
	if err != nil {
		e.t.Fatalf("add pod on %s: %v", e.lab.Nodes[i].Name, err)
	}
	return p
}

// allPairs checks ICMP (IPv4, and IPv6 when both pods have it) and TCP between every ordered pair of pods,
// waiting for routes to converge first.
func allPairs(t *testing.T, pods []*lab.Pod) {
	t.Helper()
	for _, p := range pods {
		srv, err := p.ServeEcho(7007)
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
	}
	for _, a := range pods {
		for _, b := range pods {
			if a == b {
				continue
			}
			if err := lab.WaitFor(20*time.Second, fmt.Sprintf("ping %s -> %s (%s)", a.Name, b.Name, b.IP4), func() (bool, error) {
				err := a.Ping(b.IP4, 1)
				return err == nil, err
			}); err != nil {
				t.Error(err)
				continue
			}
			if err := a.TCP(b.IP4, 7007); err != nil {
				t.Errorf("TCP %s -> %s:7007: %v", a.Name, b.IP4, err)
			}
			if a.IP6 != "" && b.IP6 != "" {
				if err := lab.WaitFor(20*time.Second, fmt.Sprintf("ping6 %s -> %s", a.Name, b.IP6), func() (bool, error) {
					err := a.Ping(b.IP6, 1)
					return err == nil, err
				}); err != nil {
					t.Error(err)
				}
				if err := a.TCP(b.IP6, 7007); err != nil {
					t.Errorf("TCP %s -> [%s]:7007: %v", a.Name, b.IP6, err)
				}
			}
		}
	}
}

func TestEtcdVxlanDualStack(t *testing.T) {
	e := newEnv(t, 3)
	if err := e.lab.PutNetConfig(fmt.Sprintf(netDual, "vxlan")); err != nil {
		t.Fatal(err)
	}
	var pods []*lab.Pod
	for i := range e.lab.Nodes {
		e.start(i, e.weftd, lab.DaemonOptions{HealthPort: 10250 + i})
		pods = append(pods, e.pod(i, "p", e.plugin))
	}
	for _, p := range pods {
		if p.IP4 == "" || p.IP6 == "" {
			t.Fatalf("pod %s got %q / %q, want both families", p.Name, p.IP4, p.IP6)
		}
		if err := p.Check(); err != nil {
			t.Errorf("CNI CHECK %s: %v", p.Name, err)
		}
	}
	for i, n := range e.lab.Nodes {
		if code, body, err := n.Readyz(10250 + i); code != 200 {
			t.Errorf("%s /readyz = %d %q %v", n.Name, code, body, err)
		}
	}
	allPairs(t, pods)

	t.Run("restart keeps subnet, VtepMAC and traffic", func(t *testing.T) {
		n := e.lab.Nodes[0]
		subnetBefore := n.EnvValue("FLANNEL_SUBNET")
		macsBefore := [2]string{mac(n, "flannel.1"), mac(n, "flannel-v6.1")}
		if err := n.Daemon.Stop(); err != nil {
			t.Fatalf("weftd did not exit cleanly on SIGTERM: %v", err)
		}
		// While weftd is down, pod traffic keeps flowing over the state it left.
		if err := pods[1].Ping(pods[0].IP4, 2); err != nil {
			t.Errorf("traffic stopped while weftd was down: %v", err)
		}
		if !strings.Contains(n.IP("-d", "link", "show", "flannel.1"), "vxlan id 1") {
			t.Error("flannel.1 removed on SIGTERM")
		}
		// The devices are lost while weftd is down (a reboot, an operator): the new ones must get the MACs the
		// lease published, which the peers' FDB and neighbour entries hold, or no peer reaches this node.
		for _, d := range devices {
			if _, err := lab.NSRun(n.Name, "ip", "link", "del", d.dev); err != nil {
				t.Fatal(err)
			}
		}
		e.startReady(0)
		if got := n.EnvValue("FLANNEL_SUBNET"); got != subnetBefore {
			t.Errorf("subnet changed across restart: %s -> %s", subnetBefore, got)
		}
		if got := [2]string{mac(n, "flannel.1"), mac(n, "flannel-v6.1")}; got != macsBefore {
			t.Errorf("VtepMACs changed across restart with the devices deleted: %v -> %v", macsBefore, got)
		}
		if converged(t, e.lab.Nodes, 20*time.Second) {
			allPairs(t, pods[:2])
		}
	})

	t.Run("removing a node removes its routes, neighbours and FDB entries in both families", func(t *testing.T) {
		gone := e.lab.Nodes[2]
		sn4, sn6 := subnetOf(t, gone, "FLANNEL_SUBNET"), subnetOf(t, gone, "FLANNEL_IPV6_SUBNET")
		mac4, mac6 := mac(gone, "flannel.1"), mac(gone, "flannel-v6.1")
		// Before: the others do hold its entries, so the check below is not vacuous.
		if !converged(t, e.lab.Nodes, 20*time.Second) {
			t.FailNow()
		}
		if err := gone.Daemon.Stop(); err != nil {
			t.Fatal(err)
		}
		// Dual stack: the key is "<v4>-24&<v6>-64"; find it by its IPv4 part.
		out, err := e.lab.Etcdctl("get", "--prefix", "--keys-only", "/coreos.com/network/subnets/"+strings.Replace(sn4.String(), "/", "-", 1))
		key := strings.TrimSpace(out)
		if err != nil || key == "" || !strings.Contains(key, "&") {
			t.Fatalf("dual-stack lease of %s (%s) not found: %q %v", gone.Name, sn4, key, err)
		}
		if _, err := e.lab.Etcdctl("del", key); err != nil {
			t.Fatal(err)
		}
		// An entry is the gone node's when one of its fields is one of its subnets, their addresses, its MACs or
		// its node addresses.
		marks := map[string]bool{sn4.String(): true, sn6.String(): true, sn4.Addr().String(): true, sn6.Addr().String(): true,
			mac4: true, mac6: true, gone.Addr: true, gone.Addr6: true}
		for _, n := range e.lab.Nodes[:2] {
			n := n
			if err := lab.WaitFor(15*time.Second, n.Name+" forgets "+gone.Name, func() (bool, error) {
				var all []string
				for _, d := range devices {
					st, err := vxlanState(n, d.fam, d.dev)
					if err != nil {
						return false, err
					}
					all = append(all, st...)
				}
				for _, fam := range []string{"-4", "-6"} {
					r, err := lab.NSRun(n.Name, "ip", "-o", fam, "route", "show", "table", "all")
					if err != nil {
						return false, err
					}
					all = append(all, strings.Split(r, "\n")...)
				}
				var left []string
				for _, line := range all {
					for _, f := range strings.Fields(line) {
						if marks[f] {
							left = append(left, line)
							break
						}
					}
				}
				return len(left) == 0, fmt.Errorf("entries for %s left:\n  %s", gone.Name, strings.Join(left, "\n  "))
			}); err != nil {
				t.Error(err)
			}
		}
		converged(t, e.lab.Nodes[:2], 15*time.Second)
	})
}

func TestEtcdHostGWDualStack(t *testing.T) {
	e := newEnv(t, 3)
	if err := e.lab.PutNetConfig(fmt.Sprintf(netDual, "host-gw")); err != nil {
		t.Fatal(err)
	}
	var pods []*lab.Pod
	for i := range e.lab.Nodes {
		e.start(i, e.weftd, lab.DaemonOptions{})
		pods = append(pods, e.pod(i, "p", e.plugin))
	}
	if mtu := e.lab.Nodes[0].EnvValue("FLANNEL_MTU"); mtu != "1500" {
		t.Errorf("host-gw FLANNEL_MTU = %s, want 1500", mtu)
	}
	allPairs(t, pods)
}

// Interop: node 0 runs upstream flanneld (with upstream's CNI plugin), nodes 1 and 2 run weftd; one pod on a
// weftd node is made by upstream's meta-plugin against weftd's subnet.env.
func TestInteropEtcd(t *testing.T) {
	for _, backend := range []string{"vxlan", "host-gw"} {
		t.Run(backend, func(t *testing.T) {
			e := newEnv(t, 3)
			if err := e.lab.PutNetConfig(fmt.Sprintf(netV4, backend)); err != nil {
				t.Fatal(err)
			}
			e.start(0, e.flanneld, lab.DaemonOptions{})
			e.start(1, e.weftd, lab.DaemonOptions{})
			e.start(2, e.weftd, lab.DaemonOptions{})
			pods := []*lab.Pod{e.pod(0, "up", e.upCNI), e.pod(1, "w", e.plugin), e.pod(2, "upcni", e.upCNI)}
			allPairs(t, pods)
		})
	}
}

func TestKube(t *testing.T) {
	testenv.Bin(t, "kube-apiserver")
	for _, c := range []struct {
		name, conf string
		mixed      bool
	}{
		{"vxlan dual stack weftd", fmt.Sprintf(netDual, "vxlan"), false},
		{"interop vxlan", fmt.Sprintf(netV4, "vxlan"), true},
		{"interop host-gw", fmt.Sprintf(netV4, "host-gw"), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, 3)
			k, err := e.lab.StartKube()
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			dual := strings.Contains(c.conf, "IPv6")
			for i, n := range e.lab.Nodes {
				node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name, Annotations: map[string]string{"node.alpha.kubernetes.io/ttl": "0"}},
					Spec: corev1.NodeSpec{PodCIDR: fmt.Sprintf("10.244.%d.0/24", i+1), PodCIDRs: []string{fmt.Sprintf("10.244.%d.0/24", i+1)}}}
				if dual {
					node.Spec.PodCIDRs = append(node.Spec.PodCIDRs, fmt.Sprintf("fd00:244:0:%d::/64", i+1))
				}
				if _, err := k.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			// Daemons run as the ServiceAccount of dist/rbac.yaml, which proves that RBAC is enough.
			root, _ := testenv.RepoRoot()
			saConfig, err := k.ApplyRBAC(ctx, filepath.Join(root, "dist", "rbac.yaml"), t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			asSA := &lab.Kube{URL: k.URL, Kubeconfig: saConfig}
			var pods []*lab.Pod
			for i := range e.lab.Nodes {
				bin, plugin := e.weftd, e.plugin
				if c.mixed && i == 0 {
					bin, plugin = e.flanneld, e.upCNI
				}
				e.start(i, bin, lab.DaemonOptions{Kube: asSA, NetConf: c.conf})
				pods = append(pods, e.pod(i, "p", plugin))
			}
			allPairs(t, pods)
			for _, n := range e.lab.Nodes {
				node, err := k.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				ok := false
				for _, cond := range node.Status.Conditions {
					if cond.Type == corev1.NodeNetworkUnavailable && cond.Status == corev1.ConditionFalse && cond.Reason == "FlannelIsUp" {
						ok = true
					}
				}
				if !ok || node.Annotations["flannel.alpha.coreos.com/kube-subnet-manager"] != "true" {
					t.Errorf("node %s: condition %v annotations %v", n.Name, node.Status.Conditions, node.Annotations)
				}
			}
		})
	}
}
