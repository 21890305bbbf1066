package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/cloud/aliyun/sim"
	"github.com/weftnet/weft/internal/lab"
	"github.com/weftnet/weft/internal/testenv"
)

// eniEnv is a Kubernetes cluster on alisim's fabric running the eni backend: kube-apiserver inside the VPC,
// weftd (eni) under dist/kube-weft-eni.yaml's RBAC on every node instance, pods made through weft-eni by a
// libcni runtime on each node, and one instance outside the cluster.
type eniEnv struct {
	*vpcEnv
	kube    *lab.Kube
	ecs     *aliyun.Client // to the same alisim, from the test process (loopback)
	sa      string
	plugin  string
	rts     map[string]*lab.Runtime // node name -> its runtime
	pods    map[string]*eniPod
	conf    func(n *lab.Node) string
	healthz map[string]int
	mu      sync.Mutex // pods and netns, for drills that add pods concurrently
	netns   map[string]bool
}

// eniPod is a pod sandbox made through the runtime.
type eniPod struct {
	lab.Sandbox
	node *lab.Node
	ns   string // netns name
	IP   string
}

// e2eENIType is an instance type small enough to reach its limit in a test: (3 ENIs - the primary) x 2
// addresses = 4 pods.
const e2eENIType = "ecs.e2e.eni3"

func newENIEnv(t *testing.T, nodes int, mod func(*sim.State)) *eniEnv {
	t.Helper()
	v := newVPCEnvState(t, nodes, 200, false, `{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}`, func(st *sim.State) {
		st.InstanceTypes = append(st.InstanceTypes, &sim.InstanceType{ID: e2eENIType, EniQuantity: 3, EniPrivateIpAddressQuantity: 2,
			EniIpv6AddressQuantity: 2, EniTotalQuantity: 3})
		st.Instances[0].Type = e2eENIType
		if mod != nil {
			mod(st)
		}
	})
	e := &eniEnv{vpcEnv: v, plugin: testenv.WeftBin(t, "weft-eni"), rts: map[string]*lab.Runtime{}, pods: map[string]*eniPod{},
		healthz: map[string]int{}, netns: map[string]bool{}}
	srv := httptest.NewServer(v.srv)
	t.Cleanup(srv.Close)
	var err error
	e.ecs, err = aliyun.NewClient(aliyun.Config{Region: "cn-hangzhou", ECSEndpoint: strings.TrimPrefix(srv.URL, "http://"), Scheme: "HTTP",
		Credentials: aliyun.Static{AccessKeyID: sim.DefaultAccessKeyID, AccessKeySecret: sim.DefaultAccessKeySecret}})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Bin(t, "kube-apiserver")
	v.lab.ServiceIP = gw
	k, err := v.lab.StartKube()
	if err != nil {
		t.Fatal(err)
	}
	e.kube = k
	root, _ := testenv.RepoRoot()
	if e.sa, err = k.ApplyRBAC(context.Background(), filepath.Join(root, "dist", "kube-weft-eni.yaml"), t.TempDir()); err != nil {
		t.Fatal(err)
	}
	e.conf = func(n *lab.Node) string {
		return fmt.Sprintf(`{"EnableIPv4":true,"Backend":{"Type":"eni","vswitches":{"cn-hangzhou-h":["vsw-alisim0001"],"cn-hangzhou-i":["vsw-alisim0002"]},`+
			`"security_group":"sg-alisim0001","cluster_id":"e2e-eni","min_pool_size":1,"warm_pool_target":2,"max_pool_size":4,`+
			`"checkpoint":%q,"socket":%q}}`, filepath.Join(n.Dir, "eni", "checkpoint.json"), filepath.Join(n.Dir, "eni.sock"))
	}
	// No controller-manager runs: the pods' namespace needs its default ServiceAccount made by hand.
	if _, err := k.Client.CoreV1().ServiceAccounts("default").Create(context.Background(),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, n := range v.nodes {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name}}
		if _, err := k.Client.CoreV1().Nodes().Create(context.Background(), node, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		for ns := range e.netns {
			_, _ = lab.Run("ip", "netns", "del", ns)
		}
	})
	return e
}

// startENI starts weftd (eni) on n with /readyz on port.
func (e *eniEnv) startENI(n *lab.Node, port int) {
	e.t.Helper()
	conf := filepath.Join(n.Dir, "net-conf.json")
	if err := os.WriteFile(conf, []byte(e.conf(n)), 0o644); err != nil {
		e.t.Fatal(err)
	}
	p, err := e.lab.Start(n.Name, filepath.Join(n.Dir, "weftd.log"), []string{"VPC_ENDPOINT=" + gw + ":8900", "ECS_ENDPOINT=" + gw + ":8900",
		"ALICLOUD_CLIENT_SCHEME=HTTP", "NODE_NAME=" + n.Name, "POD_NAMESPACE=kube-system"}, e.weftd, "--kube-subnet-mgr",
		"--kubeconfig-file="+e.sa, "--net-config-path="+conf, "--iface=eth0", "--subnet-file="+n.SubnetFile(),
		"--healthz-ip=127.0.0.1", fmt.Sprintf("--healthz-port=%d", port), "-v=2")
	if err != nil {
		e.t.Fatal(err)
	}
	n.Daemon = p
	e.healthz[n.Name] = port
	if e.rts[n.Name] == nil {
		bin := filepath.Join(n.Dir, "cni-bin")
		if err := os.MkdirAll(bin, 0o755); err != nil {
			e.t.Fatal(err)
		}
		if err := os.Symlink(e.plugin, filepath.Join(bin, "weft-eni")); err != nil && !os.IsExist(err) {
			e.t.Fatal(err)
		}
		list := fmt.Sprintf(`{"cniVersion":"1.1.0","name":"weft","plugins":[{"type":"weft-eni","socket":%q,"timeout":"30s","dataDir":%q}]}`,
			filepath.Join(n.Dir, "eni.sock"), filepath.Join(n.Dir, "cni-state"))
		rt, err := lab.NewRuntime(n.Name, bin, filepath.Join(n.Dir, "cni-cache"), []byte(list))
		if err != nil {
			e.t.Fatal(err)
		}
		e.rts[n.Name] = rt
	}
}

func (e *eniEnv) waitReady(n *lab.Node, timeout time.Duration) {
	e.t.Helper()
	if err := lab.WaitFor(timeout, n.Name+" ready", func() (bool, error) {
		if n.Daemon.Exited() {
			return false, fmt.Errorf("weftd exited:\n%s", tailN(n.Daemon.Logs(), 30))
		}
		code, _ := readyz(n, e.healthz[n.Name])
		return code == 200, nil
	}); err != nil {
		_, body := readyz(n, e.healthz[n.Name])
		e.t.Fatalf("%v (readyz: %s)\n%s", err, body, tailN(n.Daemon.Logs(), 30))
	}
}

func randomID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// addPod creates the Pod object on n, its sandbox namespace, and runs CNI ADD.
func (e *eniEnv) addPod(n *lab.Node, name string) (*eniPod, error) {
	if err := e.createPod(n, name); err != nil {
		return nil, err
	}
	p, err := e.sandbox(n, name)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.pods[name] = p
	e.mu.Unlock()
	return p, e.add(p)
}

// createPod creates the Pod object, scheduled on n.
func (e *eniEnv) createPod(n *lab.Node, name string) error {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{NodeName: n.Name, Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/pause"}}}}
	_, err := e.kube.Client.CoreV1().Pods("default").Create(context.Background(), pod, metav1.CreateOptions{})
	return err
}

// sandbox makes a new sandbox (a fresh container id and network namespace) for the pod name on n.
func (e *eniEnv) sandbox(n *lab.Node, name string) (*eniPod, error) {
	p := &eniPod{node: n, ns: "ep-" + randomID()[:10]}
	p.Sandbox = lab.Sandbox{ContainerID: randomID(), Netns: "/var/run/netns/" + p.ns, Namespace: "default", Name: name}
	e.mu.Lock()
	e.netns[p.ns] = true
	e.mu.Unlock()
	if _, err := lab.Run("ip", "netns", "add", p.ns); err != nil {
		return nil, err
	}
	_, _ = lab.NSRun(p.ns, "ip", "link", "set", "lo", "up")
	return p, nil
}

// add runs CNI ADD for the sandbox and notes its address.
func (e *eniEnv) add(p *eniPod) error {
	res, err := e.rts[p.node.Name].Add(context.Background(), p.Sandbox)
	if err != nil {
		return err
	}
	for _, ip := range res.IPs {
		if ip.Address.IP.To4() != nil {
			p.IP = ip.Address.IP.String()
		}
	}
	return nil
}

// dropSandbox removes the sandbox's network namespace.
func (e *eniEnv) dropSandbox(p *eniPod) {
	_, _ = lab.Run("ip", "netns", "del", p.ns)
	e.mu.Lock()
	delete(e.netns, p.ns)
	e.mu.Unlock()
}

func (e *eniEnv) delPod(p *eniPod) error {
	err := e.rts[p.node.Name].Del(context.Background(), p.Sandbox)
	e.dropSandbox(p)
	_ = e.kube.Client.CoreV1().Pods("default").Delete(context.Background(), p.Name, metav1.DeleteOptions{})
	e.mu.Lock()
	delete(e.pods, p.Name)
	e.mu.Unlock()
	return err
}

func (p *eniPod) ping(ip string) error {
	_, err := lab.NSRun(p.ns, "ping", "-c", "1", "-W", "1", ip)
	return err
}

// enisOf lists the instance's ENIs as the cloud has them.
func (e *eniEnv) enisOf(instance string) []aliyun.ENI {
	e.t.Helper()
	list, err := e.ecs.ENIs(context.Background(), aliyun.ENIFilter{InstanceID: instance})
	if err != nil {
		e.t.Fatal(err)
	}
	return list
}

func eniHolding(enis []aliyun.ENI, ip string) string {
	a := netip.MustParseAddr(ip)
	for _, e := range enis {
		if e.PrimaryIP == a {
			return e.ID
		}
		for _, s := range e.Secondary {
			if s == a {
				return e.ID
			}
		}
	}
	return ""
}

func TestENI(t *testing.T) {
	e := newENIEnv(t, 2, nil)
	n1, n2 := e.nodes[0], e.nodes[1]
	e.startENI(n1, 10400)
	e.startENI(n2, 10401)
	e.waitReady(n1, 90*time.Second)
	e.waitReady(n2, 90*time.Second)

	// The node says it is ready and what it holds: (3 - 1) x 2 = 4 pods on n1.
	ctx := context.Background()
	var node *corev1.Node
	var cond *corev1.NodeCondition
	if err := lab.WaitFor(10*time.Second, "n1 NetworkUnavailable=False", func() (bool, error) {
		var err error
		if node, err = e.kube.Client.CoreV1().Nodes().Get(ctx, n1.Name, metav1.GetOptions{}); err != nil {
			return false, err
		}
		for i := range node.Status.Conditions {
			if node.Status.Conditions[i].Type == corev1.NodeNetworkUnavailable {
				cond = &node.Status.Conditions[i]
			}
		}
		return cond != nil && cond.Status == corev1.ConditionFalse, nil
	}); err != nil {
		t.Errorf("%v: %+v", err, cond)
	}
	if got := node.Annotations["k8s.aliyun.com/max-available-ip"]; got != "4" {
		t.Errorf("n1 advertises %q pods, want 4 ((3 ENIs - the primary) x 2)", got)
	}

	var pods []*eniPod
	for i := 0; i < 4; i++ {
		p, err := e.addPod(n1, fmt.Sprintf("a%d", i))
		if err != nil {
			t.Fatalf("pod %d on n1: %v\n%s", i, err, tailN(n1.Daemon.Logs(), 30))
		}
		pods = append(pods, p)
	}
	remote, err := e.addPod(n2, "b0")
	if err != nil {
		t.Fatalf("pod on n2: %v\n%s", err, tailN(n2.Daemon.Logs(), 30))
	}

	t.Run("pod 5 on a 4-pod node gets the limit, as weft plan says", func(t *testing.T) {
		_, err := e.addPod(n1, "a4")
		if err == nil || !strings.Contains(err.Error(), "limit") || !strings.Contains(err.Error(), "4") {
			t.Fatalf("ADD beyond the limit: %v, want an error naming the limit of 4", err)
		}
		checkPlanPods(t, n1, "eni", 4)
	})

	enis := e.enisOf("i-alisim0001")
	on := map[string][]*eniPod{}
	for _, p := range pods {
		id := eniHolding(enis, p.IP)
		if id == "" {
			t.Fatalf("pod %s address %s is on no ENI of n1: %+v", p.Name, p.IP, enis)
		}
		on[id] = append(on[id], p)
	}
	if len(on) != 2 {
		t.Fatalf("4 pods on %d ENIs, want 2: %v", len(on), on)
	}
	var sameA, sameB, other *eniPod
	for _, ps := range on {
		if sameA == nil {
			sameA, sameB = ps[0], ps[1]
		} else {
			other = ps[0]
		}
	}
	for _, c := range []struct {
		what     string
		from, to *eniPod
	}{{"same ENI", sameA, sameB}, {"another ENI of the node", sameA, other}, {"another node", sameA, remote}, {"back", remote, other}} {
		if err := lab.WaitFor(10*time.Second, c.what, func() (bool, error) { return c.from.ping(c.to.IP) == nil, nil }); err != nil {
			t.Errorf("%s: %s -> %s (%s): %v", c.what, c.from.Name, c.to.Name, c.to.IP, err)
		}
	}
	t.Run("the node itself", func(t *testing.T) {
		if err := sameA.ping("192.168.0.10"); err != nil {
			t.Errorf("pod -> its node: %v", err)
		}
	})
	t.Run("an instance outside the cluster sees the pod's own address", func(t *testing.T) {
		if got := sourceSeenBy(t, e.outside, "192.168.0.12", 7101, other.ns); got != other.IP {
			t.Fatalf("the outside instance saw %s, want the pod address %s", got, other.IP)
		}
	})
	t.Run("a Service's DNAT on the node (as kube-proxy's) reaches a pod on another node", func(t *testing.T) {
		checkServiceDNAT(t, n1.Name, "e2e-kp", remote.ns, ":7102", remote.IP+":7102", other.ns)
	})
	t.Run("weftd restores a pod's rule and an ENI's table route removed by hand", func(t *testing.T) {
		if out, err := lab.NSRun(n1.Name, "ip", "rule", "del", "pref", "2048", "from", other.IP); err != nil {
			t.Fatalf("ip rule del: %v: %s", err, out)
		}
		if out, err := lab.NSRun(n1.Name, "sh", "-c", "ip route flush table all proto 87 exact 0.0.0.0/0"); err != nil {
			t.Fatalf("ip route flush: %v: %s", err, out)
		}
		if err := lab.WaitFor(15*time.Second, "rule and table restored", func() (bool, error) {
			return strings.Contains(n1.IP("rule", "show", "pref", "2048"), "from "+other.IP+" lookup"), nil
		}); err != nil {
			t.Fatalf("%v: %s", err, n1.IP("rule"))
		}
		if err := lab.WaitFor(15*time.Second, "traffic to another node again", func() (bool, error) { return other.ping(remote.IP) == nil, nil }); err != nil {
			t.Fatalf("%v: %s", err, n1.IP("route", "show", "table", "all", "proto", "87"))
		}
	})
	t.Run("CHECK, then DEL releases into the cooldown", func(t *testing.T) {
		if err := e.rts[n1.Name].Check(ctx, sameA.Sandbox); err != nil {
			t.Fatalf("CHECK: %v", err)
		}
		// On n2, which has room: a released address is not handed out again within its cooldown.
		p, err := e.addPod(n2, "b1")
		if err != nil {
			t.Fatal(err)
		}
		ip := p.IP
		if err := e.delPod(p); err != nil {
			t.Fatalf("DEL: %v", err)
		}
		if err := e.rts[n2.Name].Del(ctx, p.Sandbox); err != nil {
			t.Errorf("a second DEL: %v", err)
		}
		b, err := os.ReadFile(filepath.Join(n2.Dir, "eni", "checkpoint.json"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), ip) || !strings.Contains(string(b), "Cooldown") {
			t.Errorf("checkpoint after DEL does not hold %s in Cooldown:\n%s", ip, b)
		}
		for i := 0; i < 3; i++ {
			q, err := e.addPod(n2, fmt.Sprintf("b%d", 2+i))
			if err != nil {
				t.Fatalf("ADD after DEL: %v", err)
			}
			if q.IP == ip {
				t.Errorf("the address %s was handed out again within its cooldown", ip)
			}
		}
	})
}
