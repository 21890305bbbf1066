package e2e

// Store outages: etcd, or the Kubernetes API server, goes away for a minute under running nodes. The data path
// must not notice (the kernel state stays), /readyz must (503 naming the store), the daemons must come back on
// their own (same process), and a node that started during the outage must be routed once the store is back.

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftnet/weft/internal/lab"
	"github.com/weftnet/weft/internal/testenv"
)

// outageFor is how long the store stays away in each drill (the 60 s).
const outageFor = 60 * time.Second

// maxPingLoss is the share of pings between existing pods an outage may cost: none should be lost, since no
// kernel entry changes, but a CI machine may drop a packet or two under load.
const maxPingLoss = 0.02

// outageEnv is a running cluster of weftd nodes with one pod each, a health port per node, and the pids the
// drill checks are unchanged at the end.
type outageEnv struct {
	*env
	pods []*lab.Pod
	pids []int
}

func outagePort(base, i int) int { return base + i }

// startNodes starts weftd on the first n nodes (o gives the mode), a pod on each, and waits for all pairs.
func (e *outageEnv) startNodes(n, portBase int, o lab.DaemonOptions) {
	e.t.Helper()
	for i := 0; i < n; i++ {
		o := o
		o.HealthPort = outagePort(portBase, i)
		e.start(i, e.weftd, o)
		e.pods = append(e.pods, e.pod(i, "p", e.plugin))
		e.pids = append(e.pids, e.lab.Nodes[i].Daemon.Cmd.Process.Pid)
	}
	allPairs(e.t, e.pods)
}

// awaitReadyz waits until node i's /readyz answers code with a body containing want.
func awaitReadyz(t *testing.T, n *lab.Node, port, code int, want string, timeout time.Duration) {
	t.Helper()
	var got int
	var body string
	if err := lab.WaitFor(timeout, fmt.Sprintf("%s /readyz %d %q", n.Name, code, want), func() (bool, error) {
		var err error
		got, body, err = n.Readyz(port)
		return got == code && strings.Contains(body, want), err
	}); err != nil {
		t.Fatalf("%v (last: %d %q)\nlog:\n%s", err, got, body, tailN(n.Daemon.Logs(), 20))
	}
}

// checkPing stops a ping run and fails when it lost more than maxPingLoss.
func checkPing(t *testing.T, what string, r *lab.PingRun) {
	t.Helper()
	st, err := r.Stop()
	sent, recv := st.Sent, st.Received
	if err != nil {
		t.Fatal(err)
	}
	loss := 1 - float64(recv)/float64(sent)
	t.Logf("%s: %d pings sent, %d answered (%.1f %% lost)", what, sent, recv, 100*loss)
	if sent < int(outageFor/time.Second) || loss > maxPingLoss {
		t.Errorf("%s: %d of %d pings lost, want at most %.0f %%", what, sent-recv, sent, 100*maxPingLoss)
	}
}

// samePIDs checks that no weftd of the original nodes restarted or died.
func (e *outageEnv) samePIDs() {
	e.t.Helper()
	for i, pid := range e.pids {
		n := e.lab.Nodes[i]
		if n.Daemon.Exited() || n.Daemon.Cmd.Process.Pid != pid {
			e.t.Errorf("%s: weftd %d did not survive the outage (exited %v):\n%s", n.Name, pid, n.Daemon.Exited(), tailN(n.Daemon.Logs(), 20))
		}
	}
}

// routesPeer checks that node n has the vxlan route and FDB entry of peer (a node whose weftd is running).
func routesPeer(t *testing.T, n, peer *lab.Node) {
	t.Helper()
	sn := strings.Replace(peer.EnvValue("FLANNEL_SUBNET"), ".1/", ".0/", 1)
	mac := peer.VtepMAC()
	if err := lab.WaitFor(20*time.Second, n.Name+" routes "+peer.Name, func() (bool, error) {
		routes := n.IP("route", "show", sn)
		fdb, _ := lab.NSRun(n.Name, "bridge", "fdb", "show", "dev", "flannel.1")
		ok := strings.Contains(routes, "dev flannel.1") && strings.Contains(fdb, mac+" dst "+peer.Addr)
		return ok, fmt.Errorf("route %s: %q; fdb:\n%s", sn, routes, fdb)
	}); err != nil {
		t.Error(err)
	}
}

// drillOutage runs the common part of both drills: with the store down (down stops it, up brings it back), the
// ping between the two running nodes' pods keeps going, their /readyz names the store, and a node started
// meanwhile (join) is routed once the store is back.
func (e *outageEnv) drillOutage(store string, portBase int, down, up func(), join lab.DaemonOptions) {
	t := e.t
	ping, err := e.pods[0].StartPing(e.pods[1].IP4, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	down()
	for i := range e.pids {
		awaitReadyz(t, e.lab.Nodes[i], outagePort(portBase, i), 503, store+" store unreachable", 30*time.Second)
	}
	// A node that joins while the store is away: it cannot register yet.
	late := e.lab.Nodes[len(e.pids)]
	join.Binary, join.HealthPort = e.weftd, outagePort(portBase, len(e.pids))
	if _, err := late.StartDaemon(join); err != nil {
		t.Fatal(err)
	}
	awaitReadyz(t, late, join.HealthPort, 503, "", 30*time.Second)
	time.Sleep(time.Until(began.Add(outageFor)))
	if err := e.pods[1].TCP(e.pods[0].IP4, 7008); err == nil || !strings.Contains(err.Error(), "refused") {
		// No echo server on 7008: "connection refused" proves the TCP path works during the outage.
		t.Errorf("TCP %s -> %s during the outage: %v, want connection refused (a reply)", e.pods[1].Name, e.pods[0].IP4, err)
	}
	up()
	t.Logf("%s was away for %s", store, time.Since(began).Round(time.Second))

	if _, err := late.WaitSubnetEnv(90 * time.Second); err != nil {
		t.Fatal(err)
	}
	for i := range e.lab.Nodes {
		awaitReadyz(t, e.lab.Nodes[i], outagePort(portBase, i), 200, "ok", 60*time.Second)
	}
	checkPing(t, "ping "+e.pods[0].Name+" -> "+e.pods[1].Name+" across the "+store+" outage", ping)
	e.samePIDs()
	for i := range e.pids {
		routesPeer(t, e.lab.Nodes[i], late)
	}
	allPairs(t, append(e.pods, e.pod(len(e.pids), "p", e.plugin)))
}

// TestOutageEtcd: etcd is killed and restarted on the same data directory a minute later.
func TestOutageEtcd(t *testing.T) {
	t.Parallel()
	e := &outageEnv{env: newEnv(t, 3)}
	if err := e.lab.PutNetConfig(fmt.Sprintf(netV4, "vxlan")); err != nil {
		t.Fatal(err)
	}
	const ports = 10270
	e.startNodes(2, ports, lab.DaemonOptions{})
	e.drillOutage("etcd", ports,
		func() {
			if err := e.lab.Signal("etcd", syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		},
		func() {
			if err := e.lab.StartEtcd(); err != nil {
				t.Fatal(err)
			}
		}, lab.DaemonOptions{})
}

// TestOutageKube: kube-apiserver is frozen (SIGSTOP: connections hang rather than fail) for a minute.
func TestOutageKube(t *testing.T) {
	t.Parallel()
	testenv.Bin(t, "kube-apiserver")
	e := &outageEnv{env: newEnv(t, 3)}
	k, err := e.lab.StartKube()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Every node is registered (the kubelet does that); the late one's weftd starts during the outage.
	for i, n := range e.lab.Nodes {
		cidr := fmt.Sprintf("10.244.%d.0/24", i+1)
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name}, Spec: corev1.NodeSpec{PodCIDR: cidr, PodCIDRs: []string{cidr}}}
		if _, err := k.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	root, _ := testenv.RepoRoot()
	saConfig, err := k.ApplyRBAC(ctx, filepath.Join(root, "dist", "rbac.yaml"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	o := lab.DaemonOptions{Kube: &lab.Kube{URL: k.URL, Kubeconfig: saConfig}, NetConf: fmt.Sprintf(netV4, "vxlan")}
	const ports = 10280
	e.startNodes(2, ports, o)
	e.drillOutage("kube", ports,
		func() {
			if err := e.lab.Signal("kube-apiserver", syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
		},
		func() {
			if err := e.lab.Signal("kube-apiserver", syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
		}, o)
}

// TestOutageEtcdLeaseExpires: a node cut off from etcd for longer than its lease lives gets the same subnet back
// when it reconnects, without a restart. The 24 h TTL is simulated: while the node is cut off, its key is bound
// to a 2 s etcd lease, which expires during the cut.
func TestOutageEtcdLeaseExpires(t *testing.T) {
	t.Parallel()
	e := &outageEnv{env: newEnv(t, 2)}
	if err := e.lab.PutNetConfig(fmt.Sprintf(netV4, "vxlan")); err != nil {
		t.Fatal(err)
	}
	const ports = 10290
	e.startNodes(2, ports, lab.DaemonOptions{})
	n := e.lab.Nodes[0]
	key := "/coreos.com/network/subnets/" + strings.Replace(strings.Replace(n.EnvValue("FLANNEL_SUBNET"), ".1/", ".0/", 1), "/", "-", 1)
	value, err := e.lab.Etcdctl("get", "--print-value-only", key)
	if err != nil || !strings.Contains(value, n.Addr) {
		t.Fatalf("lease %s of %s: %q %v", key, n.Name, value, err)
	}

	cut := []string{"OUTPUT", "-d", lab.UnderlayIP, "-p", "tcp", "--dport", "2379", "-j", "DROP"}
	if _, err := lab.NSRun(n.Name, append([]string{"iptables", "-I"}, cut...)...); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if _, err := lab.NSRun(n.Name, append([]string{"iptables", "-D"}, cut...)...); err != nil {
				t.Error(err)
			}
		}
	}
	defer restore()
	awaitReadyz(t, n, outagePort(ports, 0), 503, "etcd store unreachable", 30*time.Second)
	grant, err := e.lab.Etcdctl("lease", "grant", "2")
	f := strings.Fields(grant) // "lease 694d7a5e3b1a2c0f granted with TTL(2s)"
	if err != nil || len(f) < 2 {
		t.Fatalf("etcdctl lease grant: %q %v", grant, err)
	}
	if _, err := e.lab.Etcdctl("put", "--lease="+f[1], key, strings.TrimSpace(value)); err != nil {
		t.Fatal(err)
	}
	if err := lab.WaitFor(20*time.Second, key+" expires", func() (bool, error) {
		out, err := e.lab.Etcdctl("get", "--keys-only", key)
		return err == nil && strings.TrimSpace(out) == "", err
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(began.Add(outageFor / 2)))
	restore()
	t.Logf("%s was cut off from etcd for %s", n.Name, time.Since(began).Round(time.Second))

	if err := lab.WaitFor(120*time.Second, key+" re-acquired", func() (bool, error) {
		out, err := e.lab.Etcdctl("get", "--print-value-only", key)
		return strings.Contains(out, `"`+n.Addr+`"`), err
	}); err != nil {
		t.Fatalf("%v\n%s", err, tailN(n.Daemon.Logs(), 20))
	}
	if !strings.Contains(n.Daemon.Logs(), "re-acquired") {
		t.Errorf("weftd's log does not show the re-acquisition:\n%s", tailN(n.Daemon.Logs(), 20))
	}
	awaitReadyz(t, n, outagePort(ports, 0), 200, "ok", 60*time.Second)
	e.samePIDs()
	routesPeer(t, e.lab.Nodes[1], n)
	allPairs(t, e.pods)
}
