package e2e

// Per-pod bandwidth limits, end to end: a pod annotated kubernetes.io/ingress-bandwidth and egress-bandwidth is
// made through the conflist weft ships, by a runtime that turns the annotations into the bandwidth capability as
// containerd does (lab.Runtime), and iperf3 from a pod on another node measures it and an unlimited neighbour on
// the same node. eni: weft-eni's own tbf qdiscs, both directions (exclusive ENIs: an ifb per direction in the pod). vxlan: the reference bandwidth plugin chained
// after flannel, both directions (its egress limit is a tbf on an ifb device the plugin makes on the node).

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftnet/weft/bench/netperf"
	"github.com/weftnet/weft/internal/bandwidth"
	"github.com/weftnet/weft/internal/cni/install"
	"github.com/weftnet/weft/internal/eni/datapath"
	"github.com/weftnet/weft/internal/lab"
	"github.com/weftnet/weft/internal/testenv"
)

const (
	bwLimit     = "40M" // the annotation
	bwLimitBits = 40e6
	// bwTolerance is the bound: the limited pod's throughput within 10 % of its limit.
	bwTolerance = 0.10
	// bwFreeFactor: the unlimited neighbour must reach at least this multiple of the limit ("unaffected").
	bwFreeFactor = 3
	bwPort       = 5331
	// iperf3 runs bwSecs seconds after bwOmit seconds left out of the figure: tbf's bucket (at most 1 s of the
	// rate for weft-eni, about 4.29 s of tokens for the reference plugin, whose containerd burst the kernel
	// caps) lets the first moments pass at line rate.
	bwOmit = 2
	bwSecs = 4
)

var bwAnnotations = map[string]string{bandwidth.IngressAnnotation: bwLimit, bandwidth.EgressAnnotation: bwLimit}

// iperf3Mbps runs iperf3 from clientNS to a server on ip in serverNS and returns the receiver's Mbit/s, the
// first bwOmit seconds left out. reverse: the server sends (iperf3 -R), so traffic leaves serverNS.
func iperf3Mbps(t *testing.T, serverNS, clientNS, ip string, reverse bool) float64 {
	t.Helper()
	return iperf3MbpsFrom(t, serverNS, clientNS, "", ip, reverse)
}

// iperf3MbpsFrom is iperf3Mbps with the client bound to clientIP ("": the route's source).
func iperf3MbpsFrom(t *testing.T, serverNS, clientNS, clientIP, ip string, reverse bool) float64 {
	t.Helper()
	stop, err := netperf.Exec(serverNS, "iperf3", "-s", "-1", "-B", ip, "-p", strconv.Itoa(bwPort))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := lab.WaitFor(10*time.Second, "iperf3 server listening in "+serverNS, func() (bool, error) {
		out, _ := lab.NSRun(serverNS, "ss", "-Hltn", "sport", "= :"+strconv.Itoa(bwPort))
		return strings.Contains(out, ip+":"+strconv.Itoa(bwPort)), nil
	}); err != nil {
		t.Fatal(err)
	}
	args := []string{"iperf3", "-c", ip, "-p", strconv.Itoa(bwPort), "-O", strconv.Itoa(bwOmit), "-t", strconv.Itoa(bwSecs), "-J"}
	if reverse {
		args = append(args, "-R")
	}
	if clientIP != "" {
		args = append(args, "-B", clientIP)
	}
	out, err := lab.NSRun(clientNS, args...)
	if err != nil {
		t.Fatalf("iperf3 %s -> %s: %v\n%s", clientNS, ip, err, out)
	}
	g, err := netperf.ParseIperf3(out)
	if err != nil {
		t.Fatalf("iperf3 %s -> %s: %v\n%s", clientNS, ip, err, out)
	}
	return g * 1000
}

// bwMeasure is one iperf3 run's figure and what it must satisfy.
type bwMeasure struct {
	what    string
	mbps    float64
	limited bool
}

func checkBandwidth(t *testing.T, ms []bwMeasure) {
	t.Helper()
	limit := bwLimitBits / 1e6
	for _, m := range ms {
		t.Logf("%s: %.1f Mbit/s", m.what, m.mbps)
		switch {
		case m.limited && (m.mbps < limit*(1-bwTolerance) || m.mbps > limit*(1+bwTolerance)):
			t.Errorf("%s: %.1f Mbit/s, want within %.0f %% of the %s limit (%.1f..%.1f)", m.what, m.mbps, bwTolerance*100,
				bwLimit, limit*(1-bwTolerance), limit*(1+bwTolerance))
		case !m.limited && m.mbps < limit*bwFreeFactor:
			t.Errorf("%s: %.1f Mbit/s, want an unlimited pod well above the neighbour's limit (at least %.0f)", m.what, m.mbps,
				limit*bwFreeFactor)
		}
	}
}

// shippedENIConflist is dist/cni/10-weft-eni.conflist, as install-cni installs it, with the node's socket and
// state directory.
func shippedENIConflist(t *testing.T, n *lab.Node) []byte {
	t.Helper()
	root, _ := testenv.RepoRoot()
	b, err := os.ReadFile(filepath.Join(root, "dist", "cni", "10-weft-eni.conflist"))
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	p := c["plugins"].([]any)[0].(map[string]any)
	p["socket"], p["dataDir"], p["timeout"] = filepath.Join(n.Dir, "eni.sock"), filepath.Join(n.Dir, "cni-state-bw"), "30s"
	out, _ := json.Marshal(c)
	return out
}

// addAnnotatedPod is addPod for a Pod with annotations, which the sandbox passes to the runtime as the kubelet
// does.
func (e *eniEnv) addAnnotatedPod(n *lab.Node, name string, ann map[string]string) *eniPod {
	e.t.Helper()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Annotations: ann},
		Spec: corev1.PodSpec{NodeName: n.Name, Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/pause"}}}}
	if _, err := e.kube.Client.CoreV1().Pods("default").Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	p, err := e.sandbox(n, name)
	if err != nil {
		e.t.Fatal(err)
	}
	p.Annotations = ann
	e.mu.Lock()
	e.pods[name] = p
	e.mu.Unlock()
	if err := e.add(p); err != nil {
		e.t.Fatalf("ADD %s: %v\n%s", name, err, tailN(n.Daemon.Logs(), 20))
	}
	return p
}

func TestBandwidthENI(t *testing.T) {
	t.Parallel()
	e := newENIEnv(t, 2, nil)
	n1, n2 := e.nodes[0], e.nodes[1]
	e.startENI(n1, 10470)
	e.startENI(n2, 10471)
	e.waitReady(n1, 90*time.Second)
	e.waitReady(n2, 90*time.Second)
	rt, err := lab.NewRuntime(n1.Name, filepath.Join(n1.Dir, "cni-bin"), filepath.Join(n1.Dir, "cni-cache-bw"), shippedENIConflist(t, n1))
	if err != nil {
		t.Fatal(err)
	}
	e.rts[n1.Name] = rt

	limited := e.addAnnotatedPod(n1, "bw-limited", bwAnnotations)
	free := e.addAnnotatedPod(n1, "bw-free", nil)
	client, err := e.addPod(n2, "bw-client")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*eniPod{limited, free} {
		if err := lab.WaitFor(10*time.Second, "client -> "+p.Name, func() (bool, error) { return client.ping(p.IP) == nil, nil }); err != nil {
			t.Fatal(err)
		}
	}

	// The kernel state: weft's tbf on the limited pod's host veth and on its eth0, nothing on the neighbour's.
	veth := datapath.HostVethName(limited.ContainerID, "eth0")
	hostQ, _ := lab.NSRun(n1.Name, "tc", "qdisc", "show", "dev", veth)
	podQ, _ := lab.NSRun(limited.ns, "tc", "qdisc", "show", "dev", "eth0")
	for _, q := range []string{hostQ, podQ} {
		if !strings.Contains(q, "tbf 57: root") || !strings.Contains(q, "rate 40Mbit") {
			t.Errorf("limited pod's qdisc %q, want tbf 57: root rate 40Mbit", q)
		}
	}
	freeQ, _ := lab.NSRun(n1.Name, "tc", "qdisc", "show", "dev", datapath.HostVethName(free.ContainerID, "eth0"))
	if strings.Contains(freeQ, "tbf") {
		t.Errorf("unlimited pod's host veth has %q", freeQ)
	}
	if err := rt.Check(context.Background(), limited.Sandbox); err != nil {
		t.Errorf("CHECK of the limited pod: %v", err)
	}

	checkBandwidth(t, []bwMeasure{
		{"eni: into the limited pod (its ingress limit)", iperf3Mbps(t, limited.ns, client.ns, limited.IP, false), true},
		{"eni: out of the limited pod (its egress limit)", iperf3Mbps(t, limited.ns, client.ns, limited.IP, true), true},
		{"eni: into the unlimited neighbour", iperf3Mbps(t, free.ns, client.ns, free.IP, false), false},
		{"eni: out of the unlimited neighbour", iperf3Mbps(t, free.ns, client.ns, free.IP, true), false},
	})

	// A limit removed behind the plugin's back is CHECK's error; DEL removes the veth and its qdiscs with it.
	if out, err := lab.NSRun(limited.ns, "tc", "qdisc", "del", "dev", "eth0", "root"); err != nil {
		t.Fatalf("tc qdisc del: %v: %s", err, out)
	}
	if err := rt.Check(context.Background(), limited.Sandbox); err == nil || !strings.Contains(err.Error(), "egress limit on eth0: missing") {
		t.Errorf("CHECK without the egress qdisc: %v", err)
	}
	if err := e.delPod(limited); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	if out, err := lab.NSRun(n1.Name, "ip", "link", "show", veth); err == nil {
		t.Errorf("host veth %s after DEL: %s", veth, out)
	}
}

func TestBandwidthVxlan(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2)
	if err := e.lab.PutNetConfig(fmt.Sprintf(netV4, "vxlan")); err != nil {
		t.Fatal(err)
	}
	e.startReady(0)
	e.startReady(1)
	rts := map[*lab.Node]*lab.Runtime{}
	for _, n := range e.lab.Nodes {
		bin, err := n.CNIBinDir(e.plugin)
		if err != nil {
			t.Fatal(err)
		}
		// The conflist install-cni installs for the bridge backends: flannel, portmap, bandwidth.
		list, err := n.FlannelConflist(install.DefaultConflist)
		if err != nil {
			t.Fatal(err)
		}
		if rts[n], err = lab.NewRuntime(n.Name, bin, filepath.Join(n.Dir, "cni-cache-bw"), list); err != nil {
			t.Fatal(err)
		}
	}
	type pod struct {
		lab.Sandbox
		ns, ip, hostVeth string
	}
	add := func(n *lab.Node, name string, ann map[string]string) *pod {
		t.Helper()
		p := &pod{ns: "bw-" + randomID()[:10]}
		p.Sandbox = lab.Sandbox{ContainerID: randomID(), Netns: "/var/run/netns/" + p.ns, Namespace: "default", Name: name, Annotations: ann}
		if _, err := lab.Run("ip", "netns", "add", p.ns); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := rts[n].Del(context.Background(), p.Sandbox); err != nil {
				t.Errorf("DEL %s: %v", name, err)
			}
			_, _ = lab.Run("ip", "netns", "del", p.ns)
		})
		_, _ = lab.NSRun(p.ns, "ip", "link", "set", "lo", "up")
		res, err := rts[n].Add(context.Background(), p.Sandbox)
		if err != nil {
			t.Fatalf("ADD %s: %v", name, err)
		}
		for _, ip := range res.IPs {
			if ip.Address.IP.To4() != nil {
				p.ip = ip.Address.IP.String()
			}
		}
		for _, i := range res.Interfaces {
			if i.Sandbox == "" && strings.HasPrefix(i.Name, "veth") {
				p.hostVeth = i.Name
			}
		}
		return p
	}
	n0, n1 := e.lab.Nodes[0], e.lab.Nodes[1]
	limited := add(n0, "bw-limited", bwAnnotations)
	free := add(n0, "bw-free", nil)
	client := add(n1, "bw-client", nil)
	for _, p := range []*pod{limited, free} {
		if err := lab.WaitFor(20*time.Second, "client -> "+p.Name, func() (bool, error) {
			_, err := lab.NSRun(client.ns, "ping", "-c", "1", "-W", "1", p.ip)
			return err == nil, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	// The reference plugin's tbf on the limited pod's host veth (ADD's result names it), none on the neighbour's.
	for _, p := range []*pod{limited, free} {
		q, err := lab.NSRun(n0.Name, "tc", "qdisc", "show", "dev", p.hostVeth)
		if err != nil {
			t.Fatalf("%s host veth %q: %v %s", p.Name, p.hostVeth, err, q)
		}
		if has := strings.Contains(q, "tbf") && strings.Contains(q, "rate 40Mbit"); has != (p == limited) {
			t.Errorf("%s host veth %s qdiscs %q: want the bandwidth plugin's tbf at 40Mbit on the limited pod only", p.Name, p.hostVeth, q)
		}
	}

	checkBandwidth(t, []bwMeasure{
		{"vxlan: into the limited pod (reference bandwidth plugin)", iperf3Mbps(t, limited.ns, client.ns, limited.ip, false), true},
		{"vxlan: out of the limited pod (reference bandwidth plugin, its ifb)", iperf3Mbps(t, limited.ns, client.ns, limited.ip, true), true},
		{"vxlan: into the unlimited neighbour", iperf3Mbps(t, free.ns, client.ns, free.ip, false), false},
	})
}

// TestBandwidthENIExclusive: on an exclusive ENI node (weft.io/eni-mode=exclusive) a limited pod's ENI and second
// veth redirect into an ifb per direction in its namespace, whose tbf holds the pod (both of its interfaces
// together) to its limit: measured from an instance outside the cluster (through the ENI) and from the node
// (through veth1). The unlimited exclusive neighbour on the same node is not held back. DEL returns the ENI
// without a qdisc of the pod's on it.
func TestBandwidthENIExclusive(t *testing.T) {
	t.Parallel()
	e := newENIEnv(t, 1, nil) // i-alisim0001 (192.168.0.10, 3 ENIs: 2 exclusive pods); i-alisim0002 outside
	e.keepLogs()
	n := e.nodes[0]
	ctx := context.Background()
	node, err := e.kube.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node.Labels = map[string]string{"weft.io/eni-mode": "exclusive"}
	if _, err := e.kube.Client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.startENI(n, 10540)
	e.waitReady(n, 90*time.Second)
	rt, err := lab.NewRuntime(n.Name, filepath.Join(n.Dir, "cni-bin"), filepath.Join(n.Dir, "cni-cache-bwx"), shippedENIConflist(t, n))
	if err != nil {
		t.Fatal(err)
	}
	e.rts[n.Name] = rt

	limited := e.addAnnotatedPod(n, "bwx-limited", bwAnnotations)
	free := e.addAnnotatedPod(n, "bwx-free", nil)
	var limitedMAC string
	for _, x := range e.enisOf("i-alisim0001") {
		if x.PrimaryIP.String() == limited.IP {
			limitedMAC = strings.ToLower(x.MAC)
		}
	}
	for _, p := range []*eniPod{limited, free} {
		if link, _ := lab.NSRun(p.ns, "ip", "-o", "link", "show", "eth0"); !strings.Contains(link, "link/ether 00:16:3e") {
			t.Fatalf("pod %s's eth0 %q: not an ENI (is the node exclusive?)", p.Name, link)
		}
		if err := lab.WaitFor(20*time.Second, "outside -> "+p.Name, func() (bool, error) {
			_, err := lab.NSRun(e.outside, "ping", "-c", "1", "-W", "1", p.IP)
			return err == nil, nil
		}); err != nil {
			t.Fatal(err)
		}
	}

	// The kernel state: weft's tbf at 40Mbit on both ifbs of the limited pod, its eth0 and veth1 redirecting into
	// them; nothing of the kind in the neighbour.
	for _, ifb := range []string{datapath.IfbIngress, datapath.IfbEgress} {
		if q, _ := lab.NSRun(limited.ns, "tc", "qdisc", "show", "dev", ifb); !strings.Contains(q, "tbf 57: root") || !strings.Contains(q, "rate 40Mbit") {
			t.Errorf("limited pod's %s qdisc %q, want tbf 57: root rate 40Mbit", ifb, q)
		}
	}
	for _, dev := range []string{"eth0", datapath.ExclusiveVeth} {
		if f, _ := lab.NSRun(limited.ns, "tc", "filter", "show", "dev", dev, "ingress"); !strings.Contains(f, "Redirect to device "+datapath.IfbIngress) {
			t.Errorf("limited pod's %s ingress filters %q, want a redirect to %s", dev, f, datapath.IfbIngress)
		}
	}
	if l, _ := lab.NSRun(free.ns, "ip", "-o", "link"); strings.Contains(l, "ifb") {
		t.Errorf("unlimited pod's links %q, want no ifb", l)
	}
	if q, _ := lab.NSRun(free.ns, "tc", "qdisc", "show", "dev", "eth0"); strings.Contains(q, "clsact") || strings.Contains(q, "tbf") {
		t.Errorf("unlimited pod's eth0 qdiscs %q", q)
	}
	if err := rt.Check(ctx, limited.Sandbox); err != nil {
		t.Errorf("CHECK of the limited pod: %v", err)
	}

	checkBandwidth(t, []bwMeasure{
		{"eni exclusive: into the limited pod from the VPC (its ingress limit)", iperf3Mbps(t, limited.ns, e.outside, limited.IP, false), true},
		{"eni exclusive: out of the limited pod to the VPC (its egress limit)", iperf3Mbps(t, limited.ns, e.outside, limited.IP, true), true},
		// From the node's own address: the pod routes only the node's address, Services and host_stack_cidrs
		// through veth1 (the node would pick another of its addresses as the source here).
		{"eni exclusive: into the limited pod from its node, through veth1", iperf3MbpsFrom(t, limited.ns, n.Name, "192.168.0.10", limited.IP, false), true},
		{"eni exclusive: out of the limited pod to its node, through veth1", iperf3MbpsFrom(t, limited.ns, n.Name, "192.168.0.10", limited.IP, true), true},
		{"eni exclusive: into the unlimited neighbour", iperf3Mbps(t, free.ns, e.outside, free.IP, false), false},
		{"eni exclusive: out of the unlimited neighbour", iperf3Mbps(t, free.ns, e.outside, free.IP, true), false},
	})

	// A limit removed behind the plugin's back is CHECK's error; DEL returns the ENI with no qdisc of the pod's.
	if out, err := lab.NSRun(limited.ns, "tc", "qdisc", "del", "dev", datapath.IfbEgress, "root"); err != nil {
		t.Fatalf("tc qdisc del: %v: %s", err, out)
	}
	if err := rt.Check(ctx, limited.Sandbox); err == nil || !strings.Contains(err.Error(), "egress limit on "+datapath.IfbEgress) {
		t.Errorf("CHECK without the egress tbf: %v", err)
	}
	if err := e.delPod(limited); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	var eni string
	if err := lab.WaitFor(10*time.Second, "the ENI back on the node", func() (bool, error) {
		out, _ := lab.NSRun(n.Name, "ip", "-o", "link")
		for _, l := range strings.Split(out, "\n") {
			if limitedMAC != "" && strings.Contains(l, limitedMAC) {
				eni = strings.TrimSuffix(strings.Fields(l)[1], ":")
			}
		}
		return eni != "", nil
	}); err != nil {
		t.Fatal(err)
	}
	if q, _ := lab.NSRun(n.Name, "tc", "qdisc", "show", "dev", eni); strings.Contains(q, "clsact") || strings.Contains(q, "tbf") {
		t.Errorf("the ENI %s back on the node has qdiscs %q", eni, q)
	}
}
