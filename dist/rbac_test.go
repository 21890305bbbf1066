package dist_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	appsv1 "k8s.io/api/apps/v1"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/knftables"

	"github.com/weftnet/weft/backend/eni"
	"github.com/weftnet/weft/internal/coordination"
	"github.com/weftnet/weft/internal/nsutil"
	"github.com/weftnet/weft/internal/policy/engine"
	"github.com/weftnet/weft/internal/policy/ruleset"
	"github.com/weftnet/weft/internal/testenv"
)

// TestWeftdUnderManifestRBAC runs the real weftd as the manifest's ServiceAccount, with the DaemonSet's own
// command line, environment and net-conf.json, in a fresh network namespace: it becomes ready, writes subnet.env
// from the Node's podCIDR, annotates the Node and sets NetworkUnavailable=False, and is never refused. Without
// the nodes/status patch rule the same run is refused and never ready, so the rule is needed.
func TestWeftdUnderManifestRBAC(t *testing.T) {
	testenv.RequireRoot(t)
	weftd := testenv.WeftBin(t, "weftd")
	testenv.LookPath(t, "iptables")
	m := loadManifest(t, "kube-weft.yaml")
	k := testenv.StartAPIServer(t)
	ctx := context.Background()

	nsObj := get[corev1.Namespace](t, m, "Namespace", "kube-flannel")
	sa := get[corev1.ServiceAccount](t, m, "ServiceAccount", "flannel")
	role := get[rbacv1.ClusterRole](t, m, "ClusterRole", "flannel")
	binding := get[rbacv1.ClusterRoleBinding](t, m, "ClusterRoleBinding", "flannel")
	if _, err := k.Client.CoreV1().Namespaces().Create(ctx, nsObj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Client.CoreV1().ServiceAccounts(sa.Namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Client.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	exp := int64(3600)
	tr, err := k.Client.CoreV1().ServiceAccounts(sa.Namespace).CreateToken(ctx, sa.Name,
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ds := get[appsv1.DaemonSet](t, m, "DaemonSet", dsName)
	cm := get[corev1.ConfigMap](t, m, "ConfigMap", cfgName)
	_, opts := weftdContainer(t, ds)
	prefix := opts.KubeAnnotPrefix + "/"

	t.Run("manifest rules", func(t *testing.T) {
		n := startNode(t, k, weftd, tr.Status.Token, ds, cm, "node-a", "10.244.3.0/24", "192.0.2.10")
		n.waitProbe(t, "readinessProbe", 200, 120*time.Second)
		if code, body := n.probe(t, "livenessProbe"); code != 200 {
			t.Errorf("/healthz: %d %s", code, body)
		}
		if code, body := n.get(t, "/metrics"); code != 200 || !regexp.MustCompile(`(?m)^weft_ready 1$`).MatchString(body) {
			t.Errorf("/metrics on the metrics port: %d, weft_ready 1 missing", code)
		}
		env, err := os.ReadFile(n.subnetFile)
		if err != nil || !regexp.MustCompile(`(?m)^FLANNEL_SUBNET=10\.244\.3\.1/24$`).Match(env) {
			t.Errorf("subnet.env: %v\n%s", err, env)
		}
		node, err := k.Client.CoreV1().Nodes().Get(ctx, "node-a", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		a := node.Annotations
		if a[prefix+"kube-subnet-manager"] != "true" || a[prefix+"backend-type"] != "vxlan" ||
			a[prefix+"public-ip"] != "192.0.2.10" || !strings.Contains(a[prefix+"backend-data"], "VtepMAC") {
			t.Errorf("node annotations: %v", a)
		}
		if st, reason := netUnavailable(node); st != corev1.ConditionFalse || reason != "FlannelIsUp" {
			t.Errorf("NetworkUnavailable %q (%s), want False (FlannelIsUp)", st, reason)
		}
		if log := n.log(); strings.Contains(strings.ToLower(log), "forbidden") {
			t.Errorf("weftd was refused something under the manifest's ClusterRole:\n%s", log)
		}
	})

	t.Run("without nodes/status patch", func(t *testing.T) {
		var rules []rbacv1.PolicyRule
		for _, r := range role.Rules {
			if slices.Contains(r.Resources, "nodes/status") {
				continue
			}
			rules = append(rules, r)
		}
		if len(rules) != len(role.Rules)-1 {
			t.Fatalf("expected exactly one nodes/status rule in %+v", role.Rules)
		}
		token := k.ServiceAccountToken(t, sa.Namespace, "flannel-no-status", rules)
		n := startNode(t, k, weftd, token, ds, cm, "node-b", "10.244.4.0/24", "192.0.2.11")
		deadline := time.Now().Add(90 * time.Second)
		for !strings.Contains(strings.ToLower(n.log()), "forbidden") {
			if n.exited() || time.Now().After(deadline) {
				t.Fatalf("weftd (exited %v) logged no forbidden:\n%s", n.exited(), n.log())
			}
			time.Sleep(200 * time.Millisecond)
		}
		code, body := n.probe(t, "readinessProbe")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "forbidden") || !strings.Contains(body, "nodes/status") {
			t.Errorf("/readyz %d %q: want 503 naming the refused nodes/status patch", code, body)
		}
		if _, err := os.Stat(n.subnetFile); err == nil {
			t.Error("subnet.env written although the node could not be annotated")
		}
		node, err := k.Client.CoreV1().Nodes().Get(ctx, "node-b", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if st, _ := netUnavailable(node); st == corev1.ConditionFalse {
			t.Error("NetworkUnavailable=False although nodes/status patch is forbidden")
		}
	})
}

func netUnavailable(n *corev1.Node) (corev1.ConditionStatus, string) {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeNetworkUnavailable {
			return c.Status, c.Reason
		}
	}
	return "", ""
}

// node is weftd running as one Kubernetes node inside its own network namespace.
type node struct {
	ns         netns.NsHandle
	c          *corev1.Container
	logPath    string
	subnetFile string
	port       int
	done       chan struct{}
	http       *http.Client
}

// startNode creates the Node (podCIDR, InternalIP) and a network namespace with eth0 holding addr, and runs weftd
// there with the DaemonSet container's command line and environment (downward API values filled in as the kubelet
// would) plus the paths a pod gets from its mounts. The API server listens on the host's loopback, so a forwarder
// listening on the namespace's loopback carries the kubeconfig's connections to it.
func startNode(t *testing.T, k *testenv.KubeEnv, weftd, token string, ds *appsv1.DaemonSet, cm *corev1.ConfigMap, name, podCIDR, addr string) *node {
	t.Helper()
	ctx := context.Background()
	nodeObj := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.NodeSpec{PodCIDR: podCIDR, PodCIDRs: []string{podCIDR}}}
	created, err := k.Client.CoreV1().Nodes().Create(ctx, nodeObj, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: addr}, {Type: corev1.NodeHostName, Address: name}}
	if _, err := k.Client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	ns, h := testenv.NewNetns(t)
	// eth0 is a veth whose peer stays in the namespace, up, so eth0 has carrier (no dummy module needed).
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0", MTU: 1500}, PeerName: "eth0p"}); err != nil {
		t.Fatalf("eth0: %v", err)
	}
	for _, l := range []string{"eth0p", "eth0"} {
		link, err := h.LinkByName(l)
		if err != nil {
			t.Fatal(err)
		}
		if l == "eth0" {
			a, _ := netlink.ParseAddr(addr + "/24")
			if err := h.AddrAdd(link, a); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.LinkSetUp(link); err != nil {
			t.Fatal(err)
		}
	}
	apiURL, err := url.Parse(k.URL)
	if err != nil {
		t.Fatal(err)
	}
	port := forward(t, ns, apiURL.Host)
	kubeconfig := testenv.WriteKubeconfig(t, fmt.Sprintf("https://127.0.0.1:%d", port), token)

	dir := t.TempDir()
	c, o := weftdContainer(t, ds)
	n := &node{ns: ns, c: c, logPath: filepath.Join(dir, "weftd.log"), subnetFile: filepath.Join(dir, "run", "subnet.env"),
		port: o.HealthzPort, done: make(chan struct{})}
	netConf := filepath.Join(dir, "net-conf.json")
	if err := os.WriteFile(netConf, []byte(cm.Data["net-conf.json"]), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append(slices.Clone(c.Command[1:]), c.Args...)
	args = append(args, "--kubeconfig-file="+kubeconfig, "--net-config-path="+netConf, "--subnet-file="+n.subnetFile, "--iface=eth0")
	env := []string{"PATH=" + os.Getenv("PATH")}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env = append(env, e.Name+"="+e.Value)
		case e.ValueFrom.FieldRef != nil:
			v := map[string]string{"spec.nodeName": name, "metadata.name": dsName + "-" + name, "metadata.namespace": ds.Namespace}[e.ValueFrom.FieldRef.FieldPath]
			if v == "" {
				t.Fatalf("env %s: fieldRef %s not modelled", e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
			env = append(env, e.Name+"="+v)
		}
	}
	logf, err := os.Create(n.logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(weftd, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, logf, logf
	var startErr error
	testenv.InNetns(t, ns, func() { startErr = cmd.Start() })
	if startErr != nil {
		logf.Close()
		t.Fatalf("start weftd: %v", startErr)
	}
	go func() { _ = cmd.Wait(); close(n.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-n.done
		}
		logf.Close()
		if t.Failed() {
			t.Logf("weftd log (%s):\n%s", name, n.log())
		}
	})
	n.http = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			var conn net.Conn
			err := nsutil.Do(ns, func() (err error) {
				var d net.Dialer
				conn, err = d.DialContext(ctx, network, address)
				return err
			})
			return conn, err
		}}}
	t.Cleanup(n.http.CloseIdleConnections)
	return n
}

// forward listens on 127.0.0.1 inside ns and carries each connection to target on the host's loopback; it
// returns the port. The listener and its connections close when the test ends.
func forward(t *testing.T, ns netns.NsHandle, target string) int {
	t.Helper()
	var ln net.Listener
	testenv.InNetns(t, ns, func() {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Errorf("listen in netns: %v", err)
		}
	})
	if ln == nil {
		t.FailNow()
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	track := func(c net.Conn) { mu.Lock(); conns = append(conns, c); mu.Unlock() }
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target) // this goroutine's thread is in the host namespace
			if err != nil {
				in.Close()
				continue
			}
			track(in)
			track(out)
			wg.Add(2)
			go func() { defer wg.Done(); _, _ = io.Copy(out, in); out.Close() }()
			go func() { defer wg.Done(); _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().(*net.TCPAddr).Port
}

func (n *node) log() string {
	b, _ := os.ReadFile(n.logPath)
	return string(b)
}

func (n *node) exited() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

func (n *node) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := n.http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", n.port, path))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// probe does what the kubelet does for the container's probe: GET its path on its (resolved) port.
func (n *node) probe(t *testing.T, which string) (int, string) {
	t.Helper()
	p := n.c.ReadinessProbe
	if which == "livenessProbe" {
		p = n.c.LivenessProbe
	}
	port := resolvePort(t, n.c, p.HTTPGet.Port)
	resp, err := n.http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, p.HTTPGet.Path))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (n *node) waitProbe(t *testing.T, which string, want int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		code, body := n.probe(t, which)
		if code == want {
			return
		}
		if n.exited() {
			t.Fatalf("weftd exited; %s last answered %d %s", which, code, body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still %d %q after %s", which, code, body, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestENIBackendUnderManifestRBAC makes every Kubernetes call of the eni backend, through the backend's own
// types, as a ServiceAccount holding exactly kube-weft-eni.yaml's ClusterRole rules: the pod and node informers
// sync, the node gets NetworkUnavailable, WeftENIExhausted and the capacity annotations through nodes/status, Events reach the API
// (a repeat patched into the first's count), the ENI collector's Lease is taken, and the kube-system namespace
// (the default cluster id) is read. Then each rule is taken away in turn, and some call must fail: the ClusterRole
// grants nothing the backend does not use. (test/e2e TestENI runs the whole weftd eni under these rules.)
func TestENIBackendUnderManifestRBAC(t *testing.T) {
	m := loadManifest(t, "kube-weft-eni.yaml")
	k := testenv.StartAPIServer(t)
	sa := get[corev1.ServiceAccount](t, m, "ServiceAccount", "flannel")
	role := get[rbacv1.ClusterRole](t, m, "ClusterRole", "flannel")
	ctx := context.Background()

	type call struct {
		what string
		do   func(ctx context.Context, c kubernetes.Interface, node string) error
	}
	calls := []call{
		{"pod informer of the node", func(ctx context.Context, c kubernetes.Interface, node string) error {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			p := eni.NewPods(c, node)
			p.Start(ctx)
			return p.WaitForSync(ctx)
		}},
		{"StatefulSet of an address reservation", func(ctx context.Context, c kubernetes.Interface, _ string) error {
			_, err := eni.KubeStatefulSets{Client: c}.Get(ctx, "default", "web") // absent: no error, when allowed
			return err
		}},
		{"node informer", func(ctx context.Context, c kubernetes.Interface, _ string) error {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			n := eni.NewNodes(c)
			n.Start(ctx)
			return n.WaitForSync(ctx)
		}},
		{"NetworkUnavailable, WeftENIExhausted and capacity through nodes/status", func(ctx context.Context, c kubernetes.Interface, node string) error {
			s := eni.NewNodeStatus(c, node)
			if err := s.SetNetworkReady(ctx, false, "WeftENINotReady", "no usable ENI yet"); err != nil {
				return err
			}
			if err := s.SetExhausted(ctx, true, "VSwitchExhausted", "no addresses"); err != nil {
				return err
			}
			return s.SetCapacity(ctx, 210)
		}},
		{"Events on the node, a repeat patched", func(ctx context.Context, c kubernetes.Interface, node string) error {
			ev := eni.NewEvents(c, node)
			defer ev.Close()
			ev.Repeat, ev.Spacing = time.Nanosecond, time.Nanosecond // past weft's own filter: client-go aggregates
			ev.Eventf(corev1.EventTypeWarning, "VSwitchExhausted", "vSwitch %s has no free addresses", "vsw-test")
			time.Sleep(50 * time.Millisecond)
			ev.Eventf(corev1.EventTypeWarning, "VSwitchExhausted", "vSwitch %s has no free addresses", "vsw-test")
			deadline := time.Now().Add(10 * time.Second)
			for {
				l, err := k.Client.CoreV1().Events("").List(ctx, metav1.ListOptions{FieldSelector: "reason=VSwitchExhausted,involvedObject.name=" + node})
				if err == nil && len(l.Items) == 1 && l.Items[0].Count >= 2 {
					return nil
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("no Event VSwitchExhausted on %s with count 2 within 10 s (list: %v, %d events)", node, err, len(l.Items))
				}
				time.Sleep(100 * time.Millisecond)
			}
		}},
		{"the ENI collector's Lease", func(ctx context.Context, c kubernetes.Interface, node string) error {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			co := &coordination.Kube{Client: c, Namespace: sa.Namespace}
			lctx, err := co.Lead(ctx, "eni-gc-"+node, node)
			if err != nil {
				return fmt.Errorf("lead: %w", err)
			}
			l, err := k.Client.CoordinationV1().Leases(sa.Namespace).Get(lctx, "weft-eni-gc-"+node, metav1.GetOptions{})
			if err != nil || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != node {
				return fmt.Errorf("Lease weft-eni-gc-%s not held by %s: %v", node, node, err)
			}
			return nil
		}},
		{"the kube-system namespace's UID (the default cluster_id)", func(ctx context.Context, c kubernetes.Interface, _ string) error {
			_, err := c.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{})
			return err
		}},
		{"a pod's Namespace's default vSwitches and security groups (backend/eni podnet.go)", func(ctx context.Context, c kubernetes.Interface, _ string) error {
			_, err := (eni.KubeNamespaces{Client: c}).Annotations(ctx, "default")
			return err
		}},
		{"the NetworkPolicy engine's informers: every pod, namespace and network policy (internal/policy/engine)", func(ctx context.Context, c kubernetes.Interface, node string) error {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			return engine.Watch(ctx, c, engine.New(engine.Config{Node: node}, knftables.NewFake(knftables.InetFamily, ruleset.Table)))
		}},
	}
	newNode := func(t *testing.T, name string) {
		t.Helper()
		if _, err := k.Client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	client := func(t *testing.T, name string, rules []rbacv1.PolicyRule) kubernetes.Interface {
		t.Helper()
		c, err := kubernetes.NewForConfig(k.RESTConfigForToken(k.ServiceAccountToken(t, sa.Namespace, name, rules)))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	t.Run("manifest rules", func(t *testing.T) {
		c := client(t, sa.Name, role.Rules)
		newNode(t, "eni-a")
		for _, cl := range calls {
			if err := cl.do(ctx, c, "eni-a"); err != nil {
				t.Errorf("%s: %v", cl.what, err)
			}
		}
		n, err := k.Client.CoreV1().Nodes().Get(ctx, "eni-a", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if st, reason := netUnavailable(n); st != corev1.ConditionTrue || reason != "WeftENINotReady" {
			t.Errorf("NetworkUnavailable %q (%s), want True (WeftENINotReady)", st, reason)
		}
		exhausted := false
		for _, c := range n.Status.Conditions {
			exhausted = exhausted || (c.Type == eni.ConditionExhausted && c.Status == corev1.ConditionTrue && c.Reason == "VSwitchExhausted")
		}
		if !exhausted {
			t.Errorf("no %s=True (VSwitchExhausted) in %+v", eni.ConditionExhausted, n.Status.Conditions)
		}
		if a := n.Annotations; a[eni.AnnotationMaxAvailableIP] != "210" || a[eni.AnnotationMaxPods] != "210" {
			t.Errorf("capacity annotations %v", a)
		}
	})
	for i, r := range role.Rules {
		rest := slices.Delete(slices.Clone(role.Rules), i, i+1)
		name := fmt.Sprintf("without-%d", i)
		t.Run(fmt.Sprintf("without %v %v", r.Resources, r.Verbs), func(t *testing.T) {
			c := client(t, "flannel-"+name, rest)
			node := "eni-" + name
			newNode(t, node)
			var failed []string
			for _, cl := range calls {
				if err := cl.do(ctx, c, node); err != nil {
					failed = append(failed, cl.what)
				}
			}
			if len(failed) == 0 {
				t.Errorf("every call of the eni backend succeeds without rule %+v: the ClusterRole grants more than it needs", r)
			}
			t.Logf("without %v %v: %v fail", r.Resources, r.Verbs, failed)
		})
	}
}
