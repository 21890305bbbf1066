package eni

// The CNI handler under concurrency, on a real node agent: alisim in-process (its API through the real client and
// its metadata server), the pods in client-go's fake clientset read through the backend's own informers, and the
// host side of the datapath (datapath.Host) in a fresh network namespace where the test plays the VPC and puts a
// link with each attached ENI's MAC. No fake stands in for a part the agent uses.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/weftnet/weft/backend"
	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/cloud/aliyun/sim"
	"github.com/weftnet/weft/internal/eni/checkpoint"
	"github.com/weftnet/weft/internal/eni/cniproto"
	"github.com/weftnet/weft/internal/eni/datapath"
	"github.com/weftnet/weft/internal/testenv"
)

const testNode = "node1"

type handlerEnv struct {
	n    *Network
	kube *fake.Clientset
	cl   *aliyun.Client
	ckpt string
}

func testPod(name, node string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}, Spec: corev1.PodSpec{NodeName: node},
		Status: corev1.PodStatus{Phase: corev1.PodRunning}}
}

// runInFreshNetns runs the calling test again in a child process inside a fresh network namespace and reports
// its result; it returns true in that child, which then runs the test's body. The agent's host side
// (datapath.Host) writes sysctls in the namespace of the thread calling it, so the whole process, alisim's
// servers on its loopback included, lives in the namespace the test made.
// Nothing the child prints (its log included) may contain any of forbid.
func runInFreshNetns(t *testing.T, forbid ...string) bool {
	t.Helper()
	testenv.RequireRoot(t)
	if os.Getenv("WEFT_ENI_HANDLER_CHILD") == t.Name() {
		return true
	}
	ns := fmt.Sprintf("weft-eni-h-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	if out, err := exec.Command("ip", "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v %s", err, out)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), "WEFT_ENI_HANDLER_CHILD="+t.Name())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Errorf("in a fresh namespace: %v\n%s", err, out)
	}
	for _, f := range forbid {
		if strings.Contains(string(out), f) {
			t.Errorf("the output shows %q:\n%s", f, out)
		}
	}
	return false
}

// newHandlerEnv starts a node agent for alisim's instance i-alisim0001 (ecs.c7.4xlarge, zone cn-hangzhou-h) with
// the given Backend keys, its fill loop running.
func newHandlerEnv(t *testing.T, backendKeys string, pods ...*corev1.Pod) *handlerEnv {
	t.Helper()
	st := sim.DefaultState()
	st.Timing.ENITransition = 50 * time.Millisecond
	world := sim.NewWorld(st, nil, filepath.Join(t.TempDir(), "alisim.json"))
	api := httptest.NewServer(sim.NewServer(world))
	t.Cleanup(api.Close)
	md := httptest.NewServer(sim.NewMetadata(world, "i-alisim0001"))
	t.Cleanup(md.Close)
	env := map[string]string{"METADATA_ENDPOINT": strings.TrimPrefix(md.URL, "http://"), "ALICLOUD_CLIENT_SCHEME": "HTTP",
		"VPC_ENDPOINT": strings.TrimPrefix(api.URL, "http://"), "ECS_ENDPOINT": strings.TrimPrefix(api.URL, "http://")}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	reg := prometheus.NewRegistry()
	cl, id, err := aliyun.NewFromMetadata(ctx, aliyun.Options{Getenv: func(k string) string { return env[k] }, Registerer: reg,
		Need: aliyun.NeedInstance | aliyun.NeedVPC | aliyun.NeedVPCCIDR})
	if err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(t.TempDir(), "checkpoint.json")
	cfg, err := ParseConfig([]byte(fmt.Sprintf(`{"Type":"eni","vswitches":{"cn-hangzhou-h":["vsw-alisim0001"]},"security_group":"sg-alisim0001",
		"cluster_id":"c1","checkpoint":%q,"socket":%q%s}`, ckpt, filepath.Join(t.TempDir(), "eni.sock"), backendKeys)))
	if err != nil {
		t.Fatal(err)
	}
	kube := fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: testNode}})
	for _, p := range pods {
		if _, err := kube.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	h, err := netlink.NewHandle() // the fresh namespace this process runs in (runInFreshNetns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	d := agentDeps{cfg: cfg, deps: backend.Deps{Kube: kube, NodeName: testNode, Registerer: reg}, cloud: cl,
		meta: &aliyun.Metadata{BaseURL: id.Env.MetadataURL()}, identity: id, m: newMetrics(reg),
		status: NewNodeStatus(kube, testNode), events: NewEvents(kube, testNode), pods: NewPods(kube, testNode), nodes: NewNodes(kube)}
	d.host = datapath.Host{Rules: datapath.Rules{ToPod: cfg.RulePriorityToPod, FromPod: cfg.RulePriorityFromPod}}
	d.pods.(*KubePods).Start(ctx)
	if err := d.pods.(*KubePods).WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	// The VPC's part: every ENI attached to the instance appears on the host as a link with its MAC. (Its first
	// calls race the agent's: the client must build the SDK's package-level endpoint maps once, not per call.)
	go plugENIs(ctx, t, cl, h)
	n, err := startAgent(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); n.fillLoop(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return &handlerEnv{n: n, kube: kube, cl: cl, ckpt: ckpt}
}

func plugENIs(ctx context.Context, t *testing.T, cl *aliyun.Client, h *netlink.Handle) {
	seen := map[string]bool{}
	for ctx.Err() == nil {
		enis, err := cl.ENIs(ctx, aliyun.ENIFilter{InstanceID: "i-alisim0001", Type: "Secondary"})
		if err == nil {
			for _, e := range enis {
				if e.Status != "InUse" || seen[e.MAC] {
					continue
				}
				mac, _ := net.ParseMAC(e.MAC)
				la := netlink.NewLinkAttrs()
				la.Name, la.HardwareAddr = fmt.Sprintf("eth%d", len(seen)+1), mac
				if err := h.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: fmt.Sprintf("vpc%d", len(seen)+1)}); err != nil {
					t.Errorf("plug %s: %v", e.ID, err)
				}
				seen[e.MAC] = true
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func addReq(name string) cniproto.AddRequest {
	return cniproto.AddRequest{Version: cniproto.Version, Pod: cniproto.PodID{ContainerID: "c-" + name, Netns: "/var/run/netns/" + name,
		IfName: "eth0", Namespace: "default", Name: name}}
}

// ADDs whose deadline passes while the pool is empty fail NotReady and leave nothing behind (the Abandon path):
// no address held for them, nobody counted as waiting, and the pool settles back to its target.
func TestHandlerAddsPastTheirDeadlineLeakNothing(t *testing.T) {
	if !runInFreshNetns(t) {
		return
	}
	var ps []*corev1.Pod
	for i := range 8 {
		ps = append(ps, testPod(fmt.Sprintf("d%d", i), testNode))
	}
	e := newHandlerEnv(t, `,"min_pool_size":0,"warm_pool_target":1,"max_pool_size":2`, ps...)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
			defer cancel()
			_, err := e.n.Add(ctx, addReq(fmt.Sprintf("d%d", i)))
			var pe *cniproto.Error
			if !errors.As(err, &pe) || pe.Code != cniproto.CodeNotReady {
				t.Errorf("d%d: %v, want NotReady", i, err)
			}
		}()
	}
	wg.Wait()
	if st := e.n.pool.Stats(); st.Waiting != 0 || st.Assigned != 0 {
		t.Errorf("pool %+v after the abandoned ADDs, want none waiting or assigned", st)
	}
	for _, r := range e.n.pool.Records() {
		if r.State == checkpoint.Assigned {
			t.Errorf("an abandoned ADD holds %+v", r)
		}
	}
}

// ADD for a pod the API does not have is refused BadRequest and takes no address. (A pod of another node is not
// tried here: client-go's fake clientset ignores the informer's field selector, so this node's informer would
// list it.)
func TestHandlerRefusesPodsNotHere(t *testing.T) {
	if !runInFreshNetns(t) {
		return
	}
	e := newHandlerEnv(t, "")
	for _, name := range []string{"ghost"} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := e.n.Add(ctx, addReq(name))
		cancel()
		var pe *cniproto.Error
		if !errors.As(err, &pe) || pe.Code != cniproto.CodeBadRequest {
			t.Errorf("%s: %v, want BadRequest", name, err)
		}
	}
	if st := e.n.pool.Stats(); st.Assigned != 0 || st.Waiting != 0 {
		t.Errorf("pool %+v", st)
	}
}

// Many ADDs at once while the pool is empty (no ENI yet, no idle address): each waits while the agent creates and
// attaches ENIs and assigns addresses, each gets an address of its own on a usable ENI, every one is in the
// checkpoint before its answer, and a retried ADD gets the same address again.
func TestHandlerManyAddsOnAnEmptyPool(t *testing.T) {
	if !runInFreshNetns(t) {
		return
	}
	const pods = 24
	var ps []*corev1.Pod
	for i := range pods {
		ps = append(ps, testPod(fmt.Sprintf("p%d", i), testNode))
	}
	e := newHandlerEnv(t, `,"min_pool_size":0,"warm_pool_target":1,"max_pool_size":2`, ps...)
	if st := e.n.pool.Stats(); st.Idle != 0 || st.ENIs != 0 {
		t.Fatalf("the pool is not empty at the start: %+v", st)
	}
	replies := make([]cniproto.AddReply, pods)
	errs := make([]error, pods)
	var wg sync.WaitGroup
	for i := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			replies[i], errs[i] = e.n.Add(ctx, addReq(fmt.Sprintf("p%d", i)))
		}()
	}
	wg.Wait()
	seen := map[netip.Addr]string{}
	for i, r := range replies {
		if errs[i] != nil {
			t.Errorf("p%d: %v", i, errs[i])
			continue
		}
		if other, dup := seen[r.IP]; dup {
			t.Errorf("%s given to p%d and %s", r.IP, i, other)
		}
		seen[r.IP] = fmt.Sprintf("p%d", i)
		if r.Table < 1000 || r.ENI.ID == "" || !r.ENI.VSwitchCIDR.Contains(r.IP) {
			t.Errorf("p%d: reply %+v", i, r)
		}
	}
	f, err := checkpoint.Store{Path: e.ckpt}.Load()
	if err != nil {
		t.Fatal(err)
	}
	assigned := 0
	for _, r := range f.Records {
		if r.State == checkpoint.Assigned {
			assigned++
			if seen[r.IP] != r.PodName {
				t.Errorf("checkpoint: %s held by %s, the replies say %q", r.IP, r.PodName, seen[r.IP])
			}
		}
	}
	if assigned != pods {
		t.Errorf("checkpoint holds %d assigned addresses, want %d", assigned, pods)
	}
	if st := e.n.pool.Stats(); st.Waiting != 0 || st.Assigned != pods {
		t.Errorf("pool %+v, want %d assigned, none waiting", st, pods)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	again, err := e.n.Add(ctx, addReq("p3"))
	if err != nil || again.IP != replies[3].IP {
		t.Errorf("retried ADD: %v %v, want %v", again.IP, err, replies[3].IP)
	}
}
