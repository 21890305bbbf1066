package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/cloud/aliyun/sim"
	"github.com/weftnet/weft/internal/lab"
	"github.com/weftnet/weft/internal/testenv"
)

// vpcEnv is a cloud cluster: alisim in fabric mode (router namespace + one namespace per instance), etcd and the
// OpenAPI endpoint inside the router namespace at the vSwitch gateway, weftd (ali-vpc) on every instance.
type vpcEnv struct {
	t       *testing.T
	world   *sim.World
	srv     *sim.Server
	fab     *sim.Fabric
	lab     *lab.Lab // process and pod bookkeeping only
	api     *aliyun.Client
	nodes   []*lab.Node
	weftd   string
	plugin  string
	outside string // an instance namespace running no weftd
}

const (
	gw      = "192.168.0.253"
	vpcConf = `{"Network":"10.244.0.0/16","Backend":{"Type":"ali-vpc","Resync":"2s","QuotaRetry":"2s","RouteTableQuota":%d}}`
)

func newVPCEnv(t *testing.T, nodes int, quota int) *vpcEnv {
	t.Helper()
	return newVPCEnvWith(t, nodes, quota, false, fmt.Sprintf(vpcConf, quota))
}

// newVPCEnvWith optionally gives the vSwitches and instances IPv6 and stores conf as net-conf.json.
func newVPCEnvWith(t *testing.T, nodes int, quota int, ipv6 bool, conf string) *vpcEnv {
	t.Helper()
	return newVPCEnvState(t, nodes, quota, ipv6, conf, nil)
}

// newVPCEnvState is newVPCEnvWith with mod, when set, changing the emulator's state before it starts (more
// instances, entries already in the table).
func newVPCEnvState(t *testing.T, nodes int, quota int, ipv6 bool, conf string, mod func(*sim.State)) *vpcEnv {
	t.Helper()
	testenv.RequireRoot(t)
	tools := testenv.ToolsDir(t)
	e := &vpcEnv{t: t, weftd: testenv.WeftBin(t, "weftd"), plugin: testenv.WeftBin(t, "flannel")}
	st := sim.DefaultState()
	st.RouteTables[0].Quota = quota
	// One more instance, outside the cluster, to see pod traffic as the VPC does.
	for len(st.Instances) < nodes+1 {
		i := len(st.Instances) + 1
		st.Instances = append(st.Instances, &sim.Instance{ID: fmt.Sprintf("i-alisim%04d", i), Type: "ecs.g7.2xlarge", Zone: "cn-hangzhou-i",
			VSwitchID: "vsw-alisim0002", PrimaryIP: fmt.Sprintf("192.168.1.%d", 20+i), MAC: fmt.Sprintf("00:16:3e:00:01:%02x", i),
			Status: "Running", Hostname: fmt.Sprintf("node%d", i), RAMRole: "weft-node"})
	}
	if ipv6 {
		for i, sw := range st.VSwitches {
			sw.IPv6CIDR = fmt.Sprintf("fd00:192:168:%d::/64", i)
		}
		for _, in := range st.Instances {
			a := netip.MustParseAddr(in.PrimaryIP).As4()
			in.PrimaryIPv6 = fmt.Sprintf("fd00:192:168:%d::%d", a[2], a[3])
		}
	}
	if mod != nil {
		mod(st)
	}
	e.world = sim.NewWorld(st, nil, "")
	e.world.SetTiming(sim.Timing{EntryPending: 300 * time.Millisecond, EntryDeleting: 300 * time.Millisecond, ENITransition: time.Second})
	e.srv = sim.NewServer(e.world)
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	fab, err := sim.NewFabric(e.world, "av"+hex.EncodeToString(b))
	if err != nil {
		t.Fatal(err)
	}
	e.fab = fab
	dir := t.TempDir()
	e.lab = &lab.Lab{O: lab.Options{ToolsBin: tools, Dir: dir}}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range e.nodes {
				if n.Daemon != nil {
					t.Logf("--- %s log:\n%s", n.Name, tailN(n.Daemon.Logs(), 30))
				}
			}
		}
		e.lab.Down()
		fab.Close()
	})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go fab.Run(ctx, 100*time.Millisecond)
	// The OpenAPI endpoint inside the VPC, where the instances reach it.
	var ln net.Listener
	if err := lab.InNS(fab.Router, func() (err error) { ln, err = net.Listen("tcp", gw+":8900"); return err }); err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: e.srv}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	// etcd inside the VPC too.
	e.lab.Underlay, e.lab.ServiceIP = fab.Router, gw
	if err := e.lab.StartEtcd(); err != nil {
		t.Fatal(err)
	}
	if err := e.lab.PutNetConfig(conf); err != nil {
		t.Fatal(err)
	}
	e.api, err = aliyun.NewClient(aliyun.Config{Region: "cn-hangzhou", VPCEndpoint: "unused", Scheme: "HTTP",
		Credentials: aliyun.Static{AccessKeyID: sim.DefaultAccessKeyID, AccessKeySecret: sim.DefaultAccessKeySecret}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= nodes; i++ {
		id := fmt.Sprintf("i-alisim%04d", i)
		n := &lab.Node{Lab: e.lab, Index: i, Name: fab.NS[id], Dir: filepath.Join(dir, id)}
		if err := os.MkdirAll(n.Dir, 0o755); err != nil {
			t.Fatal(err)
		}
		e.nodes = append(e.nodes, n)
	}
	e.outside = fab.NS[fmt.Sprintf("i-alisim%04d", nodes+1)]
	return e
}

func (e *vpcEnv) start(n *lab.Node, port int) {
	e.t.Helper()
	p, err := e.lab.Start(n.Name, filepath.Join(n.Dir, "weftd.log"), []string{"VPC_ENDPOINT=" + gw + ":8900", "QUOTAS_ENDPOINT=" + gw + ":8900", "ALICLOUD_CLIENT_SCHEME=HTTP"},
		e.weftd, "--etcd-endpoints="+e.lab.EtcdURL, "--iface=eth0", "--subnet-file="+n.SubnetFile(), "--ip-masq",
		"--healthz-ip=127.0.0.1", fmt.Sprintf("--healthz-port=%d", port), "-v=2")
	if err != nil {
		e.t.Fatal(err)
	}
	n.Daemon = p
}

// startAPIServer runs kube-apiserver inside the VPC and returns it with a kubeconfig for dist/rbac.yaml's
// ServiceAccount, under which the daemons run.
func (e *vpcEnv) startAPIServer() (*lab.Kube, string) {
	e.t.Helper()
	testenv.Bin(e.t, "kube-apiserver")
	e.lab.ServiceIP = gw
	k, err := e.lab.StartKube()
	if err != nil {
		e.t.Fatal(err)
	}
	root, _ := testenv.RepoRoot()
	saConfig, err := k.ApplyRBAC(context.Background(), filepath.Join(root, "dist", "rbac.yaml"), e.t.TempDir())
	if err != nil {
		e.t.Fatal(err)
	}
	return k, saConfig
}

// startKubeNodes creates every node's Node with the pod CIDR 10.244.<i+1>.0/24 and starts weftd on it in
// Kubernetes mode with /readyz on basePort+i.
func (e *vpcEnv) startKubeNodes(k *lab.Kube, saConfig, netConf string, basePort int) {
	e.t.Helper()
	for i, n := range e.nodes {
		cidr := fmt.Sprintf("10.244.%d.0/24", i+1)
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name}, Spec: corev1.NodeSpec{PodCIDR: cidr, PodCIDRs: []string{cidr}}}
		if _, err := k.Client.CoreV1().Nodes().Create(context.Background(), node, metav1.CreateOptions{}); err != nil {
			e.t.Fatal(err)
		}
		e.startKube(n, saConfig, netConf, basePort+i)
	}
}

// startKube starts weftd (ali-vpc, Kubernetes mode) on n under the ServiceAccount kubeconfig saConfig.
func (e *vpcEnv) startKube(n *lab.Node, saConfig, netConf string, port int) {
	e.t.Helper()
	conf := filepath.Join(n.Dir, "net-conf.json")
	if err := os.WriteFile(conf, []byte(netConf), 0o644); err != nil {
		e.t.Fatal(err)
	}
	p, err := e.lab.Start(n.Name, filepath.Join(n.Dir, "weftd.log"), []string{"VPC_ENDPOINT=" + gw + ":8900", "QUOTAS_ENDPOINT=" + gw + ":8900",
		"ALICLOUD_CLIENT_SCHEME=HTTP", "NODE_NAME=" + n.Name, "POD_NAMESPACE=kube-flannel"}, e.weftd, "--kube-subnet-mgr",
		"--kubeconfig-file="+saConfig, "--net-config-path="+conf, "--iface=eth0", "--subnet-file="+n.SubnetFile(), "--ip-masq",
		"--healthz-ip=127.0.0.1", fmt.Sprintf("--healthz-port=%d", port))
	if err != nil {
		e.t.Fatal(err)
	}
	n.Daemon = p
}

// entries lists the VPC table's custom entries as "dst via instance (owner) status".
func (e *vpcEnv) entries() []string {
	b, _ := e.world.Dump()
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, `"dst": "10.244.`) {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}

func readyz(n *lab.Node, port int) (int, string) {
	code, body, _ := n.Readyz(port)
	return code, body
}

func TestAliVPC(t *testing.T) {
	e := newVPCEnv(t, 3, 200)
	var pods []*lab.Pod
	for i, n := range e.nodes {
		e.start(n, 10300+i)
	}
	for i, n := range e.nodes {
		if _, err := n.WaitSubnetEnv(30 * time.Second); err != nil {
			t.Fatal(err)
		}
		if err := lab.WaitFor(30*time.Second, n.Name+" ready (route Available)", func() (bool, error) {
			code, _ := readyz(n, 10300+i)
			return code == 200, nil
		}); err != nil {
			t.Fatal(err)
		}
		p, err := n.AddPod("p", lab.CNIOptions{Plugin: e.plugin})
		if err != nil {
			t.Fatal(err)
		}
		pods = append(pods, p)
	}
	if out := e.nodes[0].IP("link", "show", "flannel.1"); !strings.Contains(out, "does not exist") {
		t.Errorf("ali-vpc must not create a tunnel device: %s", out)
	}
	if got := len(e.entries()); got != 3 {
		t.Fatalf("%d route entries, want 3: %v", got, e.entries())
	}
	allPairs(t, pods)

	t.Run("pod source addresses reach the VPC unchanged", func(t *testing.T) {
		outsideIP := strings.Fields(strings.Split(lab.MustIP(e.outside, "-4", "-o", "addr", "show", "eth0"), "inet ")[1])[0]
		outsideIP = strings.Split(outsideIP, "/")[0]
		if got := sourceSeenBy(t, e.outside, outsideIP, 7100, pods[0].Name); got != pods[0].IP4 {
			t.Fatalf("the outside instance saw %s, want the pod address %s", got, pods[0].IP4)
		}
	})

	t.Run("a deleted entry is restored by the leader", func(t *testing.T) {
		es := e.world.CustomEntries("vtb-alisim0001")
		var victim sim.RouteEntry
		for _, x := range es {
			if netip.MustParsePrefix(x.Dst).Contains(netip.MustParseAddr(pods[1].IP4)) {
				victim = x
			}
		}
		if victim.ID == "" {
			t.Fatalf("no entry for %s in %v", pods[1].IP4, es)
		}
		if err := e.world.DeleteEntry("vtb-alisim0001", victim.ID); err != nil {
			t.Fatal(err)
		}
		if err := lab.WaitFor(5*time.Second, "traffic stops", func() (bool, error) { return pods[0].Ping(pods[1].IP4, 1) != nil, nil }); err != nil {
			t.Fatal(err)
		}
		if err := lab.WaitFor(20*time.Second, "traffic restored", func() (bool, error) { return pods[0].Ping(pods[1].IP4, 1) == nil, nil }); err != nil {
			t.Fatalf("%v; entries %v", err, e.entries())
		}
	})
	// Leader handover: alivpc_handover_test.go.
}

// Faults under load: alivpc_faults_test.go.
func TestAliVPCQuota(t *testing.T) {
	e := newVPCEnv(t, 4, 3)
	for i, n := range e.nodes {
		e.start(n, 10320+i)
	}
	state := func() (ok int, quota []*lab.Node) {
		for i, n := range e.nodes {
			if n.Daemon == nil || n.Daemon.Exited() {
				continue
			}
			code, body := readyz(n, 10320+i)
			if code == 200 {
				ok++
			} else if strings.Contains(body, "RouteTableQuotaExceeded") {
				quota = append(quota, n)
			}
		}
		return ok, quota
	}
	// Three nodes get routes, the fourth reports the quota.
	if err := lab.WaitFor(40*time.Second, "three routed, one over quota", func() (bool, error) {
		ok, quota := state()
		return ok == 3 && len(quota) == 1, nil
	}); err != nil {
		t.Fatalf("%v; entries %v", err, e.entries())
	}
	_, quota := state()
	unrouted := quota[0]
	// The leader exports the shortage; weft quota, run on a node with its RAM role, exits 2 (critical).
	var leaderMetrics string
	for i, n := range e.nodes {
		code, body, err := lab.HTTPGet(n.Name, fmt.Sprintf("http://127.0.0.1:%d/metrics", 10320+i))
		if strings.Contains(body, "\nweft_route_leader 1\n") {
			leaderMetrics = body
		}
		if code != 200 {
			t.Errorf("%s /metrics: %d %v", n.Name, code, err)
		}
	}
	for _, want := range []string{`weft_nodes_unrouted{reason="RouteTableQuotaExceeded"} 1`, `weft_route_table_quota{table="vtb-alisim0001"} 3`,
		`weft_route_table_entries{kind="used",table="vtb-alisim0001"} 3`, `weft_cloud_api_calls_total{action="CreateRouteEntries",outcome="ok"}`} {
		if !strings.Contains(leaderMetrics, want) {
			t.Errorf("leader /metrics lacks %s:\n%s", want, grepWeft(leaderMetrics))
		}
	}
	weft := testenv.WeftBin(t, "weft")
	out, err := lab.NSRun(e.nodes[0].Name, "env", "VPC_ENDPOINT="+gw+":8900", "QUOTAS_ENDPOINT="+gw+":8900", "ALICLOUD_CLIENT_SCHEME=HTTP", weft, "quota", "--quota", "3", "-o", "json")
	if err == nil || !strings.Contains(err.Error(), "exit status 2") || !strings.Contains(out+err.Error(), `"level": "critical"`) {
		t.Errorf("weft quota on a full table: %v\n%s", err, out)
	}
	// Removing a routed node (its weftd stops, its lease is deleted) frees an entry for the fourth.
	var gone *lab.Node
	for _, n := range e.nodes {
		if n != unrouted && gone == nil {
			gone = n
		}
	}
	_ = gone.Daemon.Stop()
	sn := strings.Replace(gone.EnvValue("FLANNEL_SUBNET"), ".1/", ".0-", 1)
	if _, err := e.lab.Etcdctl("del", "/coreos.com/network/subnets/"+sn); err != nil {
		t.Fatal(err)
	}
	idx := 0
	for i, n := range e.nodes {
		if n == unrouted {
			idx = i
		}
	}
	if err := lab.WaitFor(40*time.Second, "the fourth node routed after a removal", func() (bool, error) {
		code, _ := readyz(unrouted, 10320+idx)
		return code == 200, nil
	}); err != nil {
		t.Fatalf("%v; entries %v", err, e.entries())
	}
	// Raising the quota and bringing the node back converges.
	if err := e.world.SetQuota("vtb-alisim0001", 10); err != nil {
		t.Fatal(err)
	}
	for i, n := range e.nodes {
		if n == gone {
			e.start(n, 10330+i)
			if err := lab.WaitFor(60*time.Second, "the returning node routed", func() (bool, error) {
				code, _ := readyz(n, 10330+i)
				return code == 200, nil
			}); err != nil {
				t.Fatalf("%v; entries %v", err, e.entries())
			}
		}
	}
	ok, _ := state()
	if ok < 3 {
		t.Fatalf("%d nodes ready after convergence", ok)
	}
	hops := map[string]int{}
	for _, x := range e.world.CustomEntries("vtb-alisim0001") {
		hops[x.NextHopID]++
	}
	for _, n := range e.nodes {
		if hops[instanceOf(n)] != 1 {
			t.Errorf("%d entries to %s, want 1: %v", hops[instanceOf(n)], instanceOf(n), e.entries())
		}
	}
}

// Kubernetes mode: the leader is elected through a Lease and reports each node's route as its
// NetworkUnavailable condition (RouteCreated, or the reason and an Event); daemons run as dist/rbac.yaml's
// ServiceAccount.
func TestAliVPCKube(t *testing.T) {
	e := newVPCEnv(t, 2, 1)
	k, saConfig := e.startAPIServer()
	ctx := context.Background()
	e.startKubeNodes(k, saConfig, fmt.Sprintf(vpcConf, 1), 10340)
	cond := func(name string) (string, string) {
		node, err := k.Client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return "", err.Error()
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeNetworkUnavailable {
				return string(c.Status), c.Reason
			}
		}
		return "", ""
	}
	// Quota 1: one node routed, the other unrouted with the reason, an Event, and /readyz 503.
	if err := lab.WaitFor(60*time.Second, "one routed, one over quota", func() (bool, error) {
		routed, quota := 0, 0
		for _, n := range e.nodes {
			switch st, reason := cond(n.Name); {
			case st == "False" && reason == "RouteCreated":
				routed++
			case st == "True" && reason == "RouteTableQuotaExceeded":
				quota++
			}
		}
		return routed == 1 && quota == 1, nil
	}); err != nil {
		t.Fatalf("%v; conditions %v %v", err, fmt.Sprint(cond(e.nodes[0].Name)), fmt.Sprint(cond(e.nodes[1].Name)))
	}
	evs, err := k.Client.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
	found := false
	for _, ev := range evs.Items {
		found = found || (ev.Reason == "RouteTableQuotaExceeded" && ev.InvolvedObject.Kind == "Node")
	}
	if err != nil || !found {
		t.Errorf("no RouteTableQuotaExceeded Event on the node: %v", err)
	}
	leases, err := k.Client.CoordinationV1().Leases("kube-flannel").Get(ctx, "weft-ali-vpc-routes", metav1.GetOptions{})
	if err != nil || leases.Spec.HolderIdentity == nil {
		t.Errorf("election Lease: %v", err)
	}
	if err := e.world.SetQuota("vtb-alisim0001", 5); err != nil {
		t.Fatal(err)
	}
	if err := lab.WaitFor(60*time.Second, "both routed", func() (bool, error) {
		for i, n := range e.nodes {
			if st, reason := cond(n.Name); st != "False" || reason != "RouteCreated" {
				return false, nil
			}
			if code, _ := readyz(n, 10340+i); code != 200 {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
}

func grepWeft(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "weft_") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Dual stack: IPv4 and IPv6 pod subnets both become VPC routes; pods reach each other over both families.
func TestAliVPCDualStack(t *testing.T) {
	e := newVPCEnvWith(t, 2, 200, true, `{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:244::/56",`+
		`"Backend":{"Type":"ali-vpc","Resync":"2s"}}`)
	var pods []*lab.Pod
	for i, n := range e.nodes {
		e.start(n, 10350+i)
	}
	for i, n := range e.nodes {
		if err := lab.WaitFor(40*time.Second, n.Name+" ready", func() (bool, error) {
			code, _ := readyz(n, 10350+i)
			return code == 200, nil
		}); err != nil {
			t.Fatalf("%v; entries %v", err, e.entries())
		}
		p, err := n.AddPod("p", lab.CNIOptions{Plugin: e.plugin})
		if err != nil {
			t.Fatal(err)
		}
		if p.IP6 == "" {
			t.Fatalf("pod %s has no IPv6 address", p.Name)
		}
		pods = append(pods, p)
	}
	if n := len(e.world.CustomEntries("vtb-alisim0001")); n != 4 {
		t.Fatalf("%d entries, want 2 IPv4 + 2 IPv6", n)
	}
	allPairs(t, pods)
}

// sourceSeenBy listens on ip:port in the namespace listenNS, connects to it from the namespace dialNS and returns
// the source address the listener saw.
func sourceSeenBy(t *testing.T, listenNS, ip string, port int, dialNS string) string {
	t.Helper()
	var ln net.Listener
	if err := lab.InNS(listenNS, func() (err error) { ln, err = net.Listen("tcp", fmt.Sprintf(":%d", port)); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	seen := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			seen <- c.RemoteAddr().(*net.TCPAddr).IP.String()
			c.Close()
		}
	}()
	var c net.Conn
	if err := lab.InNS(dialNS, func() (err error) {
		c, err = net.DialTimeout("tcp", net.JoinHostPort(ip, fmt.Sprint(port)), 3*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	return <-seen
}
