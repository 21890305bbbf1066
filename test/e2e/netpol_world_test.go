package e2e

// The world of the NetworkPolicy end-to-end tests, as in the upstream Kubernetes e2e suite
// (test/e2e/network/netpol): namespaces x, y, z labelled ns=<name> (the API server adds
// kubernetes.io/metadata.name), pods a, b, c in each labelled pod=<name>, each serving TCP and UDP on ports 80
// and 81, declared as the named container ports serve-80-tcp, serve-80-udp, serve-81-tcp, serve-81-udp. Here a
// pod is a network namespace wired by the conflist weft installs (weft's flannel meta-plugin, bridge, host-local)
// through a runtime (lab.Runtime), and a Pod object in the API made BEFORE its CNI ADD, so the ADD waits on the
// node's policy engine as with a real kubelet; after the ADD the test plays the kubelet and writes the pod's IP
// into its status, which is how the other node's engine learns it. Pods alternate between the two nodes, so
// every namespace has pods on both and same-node (bridged) and cross-node cells are both probed.

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/weftnet/weft/internal/cni/install"
	"github.com/weftnet/weft/internal/lab"
	"github.com/weftnet/weft/internal/testenv"
)

var (
	npNamespaces = []string{"x", "y", "z"}
	npPodNames   = []string{"a", "b", "c"}
	npPorts      = []int{80, 81}
)

// npPod is one pod of the world.
type npPod struct {
	ns, name string // Kubernetes namespace and name
	netns    string
	node     *lab.Node
	ip       string
	sb       lab.Sandbox
	closers  []io.Closer
}

func (p *npPod) String() string { return p.ns + "/" + p.name }

// npWorld is a running cluster with the world's pods.
type npWorld struct {
	t      *testing.T
	nodes  []*lab.Node
	plugin string // weft's CNI meta-plugin
	kube   kubernetes.Interface
	rts    map[*lab.Node]*lab.Runtime
	pods   []*npPod // x/a x/b x/c y/a ... in that order
	byName map[string]*npPod
}

// newNPWorld starts kube-apiserver, weftd in Kubernetes mode on two nodes with backend (extra: more weftd
// flags), and the world's nine pods.
func newNPWorld(t *testing.T, backend string, extra ...string) *npWorld {
	t.Helper()
	testenv.Bin(t, "kube-apiserver")
	e := newEnv(t, 2)
	k, err := e.lab.StartKube()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, n := range e.lab.Nodes {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name},
			Spec: corev1.NodeSpec{PodCIDR: fmt.Sprintf("10.244.%d.0/24", i+1), PodCIDRs: []string{fmt.Sprintf("10.244.%d.0/24", i+1)}}}
		if _, err := k.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// weftd runs as dist/rbac.yaml's ServiceAccount: its rules must be enough for the engine.
	root, _ := testenv.RepoRoot()
	saConfig, err := k.ApplyRBAC(ctx, filepath.Join(root, "dist", "rbac.yaml"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for i := range e.lab.Nodes {
		e.startReadyWith(i, lab.DaemonOptions{Kube: &lab.Kube{URL: k.URL, Kubeconfig: saConfig},
			NetConf: fmt.Sprintf(netV4, backend), Extra: extra})
	}
	return populateNPWorld(t, k.Client, e.lab.Nodes, e.plugin)
}

// populateNPWorld makes the world's namespaces and pods on nodes (two, weftd ready on each) through weft's
// conflist with the meta-plugin given.
func populateNPWorld(t *testing.T, kube kubernetes.Interface, nodes []*lab.Node, plugin string) *npWorld {
	t.Helper()
	ctx := context.Background()
	w := &npWorld{t: t, nodes: nodes, plugin: plugin, kube: kube, rts: map[*lab.Node]*lab.Runtime{}, byName: map[string]*npPod{}}
	for _, n := range nodes {
		bin, err := n.CNIBinDir(plugin)
		if err != nil {
			t.Fatal(err)
		}
		list, err := n.FlannelConflist(install.DefaultConflist)
		if err != nil {
			t.Fatal(err)
		}
		if w.rts[n], err = lab.NewRuntime(n.Name, bin, filepath.Join(n.Dir, "cni-cache-np"), list); err != nil {
			t.Fatal(err)
		}
	}
	for _, ns := range npNamespaces {
		o := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"ns": ns}}}
		if _, err := w.kube.CoreV1().Namespaces().Create(ctx, o, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// No controller-manager here to make the namespace's default ServiceAccount, which admitting a Pod needs.
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns}}
		if _, err := w.kube.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	i := 0
	for _, ns := range npNamespaces {
		for _, name := range npPodNames {
			p := w.addPod(nodes[i%2], ns, name)
			w.pods = append(w.pods, p)
			w.byName[p.String()] = p
			i++
		}
	}
	return w
}

// npPodObject is the Pod the API holds for a world pod: its labels, its node, the named ports it serves.
func npPodObject(ns, name, node string) *corev1.Pod {
	c := corev1.Container{Name: "c", Image: "registry.invalid/agnhost"}
	for _, port := range npPorts {
		for _, proto := range []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP} {
			c.Ports = append(c.Ports, corev1.ContainerPort{Name: fmt.Sprintf("serve-%d-%s", port, strings.ToLower(string(proto))),
				ContainerPort: int32(port), Protocol: proto})
		}
	}
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"pod": name}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{c}}}
}

// addPod makes a pod: the Pod object, its namespace with the servers listening, CNI ADD (which waits for the
// engine), then the IP in the Pod's status. It is deleted (CNI DEL) when the test ends.
func (w *npWorld) addPod(n *lab.Node, ns, name string) *npPod {
	t := w.t
	t.Helper()
	ctx := context.Background()
	obj, err := w.kube.CoreV1().Pods(ns).Create(ctx, npPodObject(ns, name, n.Name), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := &npPod{ns: ns, name: name, node: n, netns: "np-" + randomID()[:10]}
	p.sb = lab.Sandbox{ContainerID: randomID(), Netns: "/var/run/netns/" + p.netns, Namespace: ns, Name: name}
	if _, err := lab.Run("ip", "netns", "add", p.netns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, c := range p.closers {
			c.Close()
		}
		if err := w.rts[n].Del(context.Background(), p.sb); err != nil {
			t.Errorf("DEL %s: %v", p, err)
		}
		_, _ = lab.Run("ip", "netns", "del", p.netns)
	})
	_, _ = lab.NSRun(p.netns, "ip", "link", "set", "lo", "up")
	if err := p.serve(); err != nil {
		t.Fatal(err)
	}
	res, err := w.rts[n].Add(ctx, p.sb)
	if err != nil {
		t.Fatalf("ADD %s: %v", p, err)
	}
	for _, ip := range res.IPs {
		if ip.Address.IP.To4() != nil {
			p.ip = ip.Address.IP.String()
		}
	}
	if p.ip == "" {
		t.Fatalf("ADD %s: no IPv4 address in %v", p, res)
	}
	obj.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: p.ip, PodIPs: []corev1.PodIP{{IP: p.ip}}}
	if _, err := w.kube.CoreV1().Pods(ns).UpdateStatus(ctx, obj, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	return p
}

// serve starts the pod's servers: TCP echo (a line, or a whole long-lived stream) and UDP echo on every port.
func (p *npPod) serve() error {
	for _, port := range npPorts {
		var ln net.Listener
		var pc net.PacketConn
		if err := lab.InNS(p.netns, func() (err error) {
			if ln, err = net.Listen("tcp4", fmt.Sprintf(":%d", port)); err != nil {
				return err
			}
			pc, err = net.ListenPacket("udp4", fmt.Sprintf(":%d", port))
			return err
		}); err != nil {
			return fmt.Errorf("servers in %s: %w", p, err)
		}
		p.closers = append(p.closers, ln, pc)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
			}
		}()
		go func() {
			buf := make([]byte, 1500)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				_, _ = pc.WriteTo(buf[:n], from)
			}
		}()
	}
	return nil
}

// reset brings the cluster back to the world's initial state between cases: no policies, the namespaces' and
// pods' labels as created.
func (w *npWorld) reset() {
	w.t.Helper()
	ctx := context.Background()
	for _, ns := range npNamespaces {
		if err := w.kube.NetworkingV1().NetworkPolicies(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
			w.t.Fatal(err)
		}
		o, err := w.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			w.t.Fatal(err)
		}
		want := map[string]string{"ns": ns, "kubernetes.io/metadata.name": ns}
		if !labelsEqual(o.Labels, want) {
			o.Labels = want
			if _, err := w.kube.CoreV1().Namespaces().Update(ctx, o, metav1.UpdateOptions{}); err != nil {
				w.t.Fatal(err)
			}
		}
	}
	for _, p := range w.pods {
		w.setPodLabels(p.String(), map[string]string{"pod": p.name})
	}
}

func labelsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// setPodLabels replaces a pod's labels ("x/a").
func (w *npWorld) setPodLabels(pod string, l map[string]string) {
	w.t.Helper()
	ns, name, _ := strings.Cut(pod, "/")
	ctx := context.Background()
	o, err := w.kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	if labelsEqual(o.Labels, l) {
		return
	}
	o.Labels = l
	if _, err := w.kube.CoreV1().Pods(ns).Update(ctx, o, metav1.UpdateOptions{}); err != nil {
		w.t.Fatal(err)
	}
}

// setNSLabels adds labels to a namespace.
func (w *npWorld) setNSLabels(ns string, l map[string]string) {
	w.t.Helper()
	ctx := context.Background()
	o, err := w.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	for k, v := range l {
		o.Labels[k] = v
	}
	if _, err := w.kube.CoreV1().Namespaces().Update(ctx, o, metav1.UpdateOptions{}); err != nil {
		w.t.Fatal(err)
	}
}

// npWait is how long a matrix may take to converge after a change.
const npWait = 15 * time.Second
