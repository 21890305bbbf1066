package plugin

// The plugin with the real datapath (package datapath) in fresh namespaces, against weftd's protocol served by
// cniproto: what a runtime's ADD and DEL leave in the kernel, and what a failure after weftd answered gives back.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/internal/eni/cniproto"
	"github.com/weftnet/weft/internal/eni/datapath"
	"github.com/weftnet/weft/internal/testenv"
)

// kernelEnv is an env whose plugin runs the real datapath in a fresh host namespace, with one fresh pod
// namespace per container.
type kernelEnv struct {
	*env
	hostNs netns.NsHandle
	host   *netlink.Handle
	pods   map[string]string // container -> pod netns path
}

func newKernelEnv(t *testing.T) *kernelEnv {
	t.Helper()
	testenv.RequireRoot(t)
	e := newEnv(t)
	e.p.Datapath = Netlink{}
	hostNs, host := testenv.NewNetns(t)
	return &kernelEnv{env: e, hostNs: hostNs, host: host, pods: map[string]string{}}
}

func (k *kernelEnv) args(t *testing.T, id string, conf []byte) *skel.CmdArgs {
	t.Helper()
	path, ok := k.pods[id]
	if !ok {
		ns, _ := testenv.NewNetns(t)
		path = fmt.Sprintf("/proc/self/fd/%d", int(ns))
		k.pods[id] = path
	}
	a := k.env.args(id, conf)
	a.Netns = path
	return a
}

// run runs a plugin command on a thread in the host namespace.
func (k *kernelEnv) run(t *testing.T, f func(*skel.CmdArgs) error, a *skel.CmdArgs) error {
	t.Helper()
	var err error
	testenv.InNetns(t, k.hostNs, func() { err = f(a) })
	return err
}

func (k *kernelEnv) add(t *testing.T, id string) map[string]any {
	t.Helper()
	k.out.Reset()
	if err := k.run(t, k.p.Add, k.args(t, id, k.conf(nil))); err != nil {
		t.Fatalf("ADD %s: %v", id, err)
	}
	var res map[string]any
	if err := json.Unmarshal(k.out.Bytes(), &res); err != nil {
		t.Fatalf("ADD result %q: %v", k.out, err)
	}
	return res
}

// checkDatapath runs datapath.Check for the pod as weftd's fake answered it.
func (k *kernelEnv) checkDatapath(t *testing.T, id string, ip netip.Addr) error {
	t.Helper()
	var err error
	testenv.InNetns(t, k.hostNs, func() {
		err = datapath.Check(datapath.Pod{ContainerID: id, Netns: k.pods[id], IfName: "eth0", IP: ip, Table: 1003, MTU: 1500,
			Rules: datapath.Rules{ToPod: 600, FromPod: 2100}})
	})
	return err
}

// hostState renders the host namespace's links, addresses, routes of every table and rules, sorted.
func hostState(t *testing.T, h *netlink.Handle) string {
	t.Helper()
	var lines []string
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		lines = append(lines, fmt.Sprintf("link %s %s", l.Attrs().Name, l.Type()))
	}
	addrs, err := h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		lines = append(lines, fmt.Sprintf("addr %s %d", a.IPNet, a.LinkIndex))
	}
	routes, err := h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		lines = append(lines, fmt.Sprintf("route %v via %v dev %d table %d", r.Dst, r.Gw, r.LinkIndex, r.Table))
	}
	rules, err := h.RuleList(netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		lines = append(lines, fmt.Sprintf("rule %d %s", r.Priority, r))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func sameState(t *testing.T, what, before, after string) {
	t.Helper()
	if before != after {
		t.Errorf("%s: the host changed:\n--- before\n%s\n--- after\n%s", what, before, after)
	}
}

// ADD builds the pod's datapath as weftd said (CHECK agrees), DEL removes all of it and gives the address back.
func TestKernelAddDel(t *testing.T) {
	k := newKernelEnv(t)
	before := hostState(t, k.host)
	res := k.add(t, "kd1")
	ip := netip.MustParseAddr("10.0.1.7")
	if err := k.checkDatapath(t, "kd1", ip); err != nil {
		t.Fatalf("after ADD: %v", err)
	}
	if err := k.run(t, k.p.Check, k.args(t, "kd1", prevConf(k.env, res))); err != nil {
		t.Errorf("CHECK: %v", err)
	}
	if err := k.run(t, k.p.Del, k.args(t, "kd1", prevConf(k.env, res))); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	sameState(t, "ADD then DEL", before, hostState(t, k.host))
	if h := k.weftd.holding(); len(h) != 0 {
		t.Errorf("weftd still holds %v", h)
	}
	if st := k.states(); len(st) != 0 {
		t.Errorf("records left: %v", st)
	}
	// DEL again, and DEL with a garbage prevResult after another ADD: the host veth's route tells the address.
	if err := k.run(t, k.p.Del, k.args(t, "kd1", prevConf(k.env, res))); err != nil {
		t.Errorf("second DEL: %v", err)
	}
	k.add(t, "kd2")
	garbage := k.conf(map[string]any{"prevResult": map[string]any{"cniVersion": "1.0.0", "ips": []any{map[string]any{"address": "not-an-ip"}}}})
	if err := k.run(t, k.p.Del, k.args(t, "kd2", garbage)); err != nil {
		t.Fatalf("DEL with a garbage prevResult: %v", err)
	}
	sameState(t, "ADD then DEL with a garbage prevResult", before, hostState(t, k.host))
	if h := k.weftd.holding(); len(h) != 0 {
		t.Errorf("weftd still holds %v", h)
	}
}

// A failure once weftd has answered leaves the host as it was and gives the address back: the datapath failing
// part-way (an MTU the kernel refuses) and the result failing to print after the datapath was built.
func TestKernelAddFailsAfterWeftdAnswered(t *testing.T) {
	k := newKernelEnv(t)
	before := hostState(t, k.host)
	k.weftd.mu.Lock()
	k.weftd.mutate = func(r *cniproto.AddReply) { r.MTU = 70000 }
	k.weftd.mu.Unlock()
	err := k.run(t, k.p.Add, k.args(t, "kf1", k.conf(nil)))
	if te := cniErr(t, err); te.Code != types.ErrInternal || !strings.Contains(te.Msg, "MTU") {
		t.Errorf("ADD with an MTU the kernel refuses: %+v", te)
	}
	sameState(t, "a failed datapath", before, hostState(t, k.host))
	if h := k.weftd.holding(); len(h) != 0 {
		t.Errorf("weftd still holds %v", h)
	}
	k.weftd.mu.Lock()
	k.weftd.mutate = nil
	k.weftd.mu.Unlock()
	k.p.Stdout = failWriter{}
	if err := k.run(t, k.p.Add, k.args(t, "kf2", k.conf(nil))); err == nil {
		t.Fatal("ADD with a broken stdout succeeded")
	}
	sameState(t, "a result that cannot be printed", before, hostState(t, k.host))
	if h := k.weftd.holding(); len(h) != 0 {
		t.Errorf("weftd still holds %v", h)
	}
	if st := k.states(); len(st) != 0 {
		t.Errorf("records left: %v", st)
	}
}

// A careless runtime's second ADD for a container whose datapath stands (no DEL between) fails, and must neither
// tear down the standing datapath nor give its address back: weftd answers the same address to the same
// container, so giving it back would free an address a running pod uses, for the next pod to get it too.
func TestKernelAddTwiceKeepsTheFirst(t *testing.T) {
	k := newKernelEnv(t)
	k.add(t, "kt1")
	ip := netip.MustParseAddr("10.0.1.7")
	var stderr bytes.Buffer
	k.p.Stderr = &stderr
	err := k.run(t, k.p.Add, k.args(t, "kt1", k.conf(nil)))
	if err == nil {
		t.Fatal("a second ADD without DEL succeeded")
	}
	if !strings.Contains(err.Error(), "already") {
		t.Errorf("second ADD: %v, want it to say the datapath is already there", err)
	}
	if err := k.checkDatapath(t, "kt1", ip); err != nil {
		t.Errorf("the first ADD's datapath is damaged: %v", err)
	}
	if h := k.weftd.holding(); h["kt1/eth0"] != ip {
		t.Errorf("weftd holds %v: the running pod's address was given back", h)
	}
	if st := k.states(); len(st) != 1 {
		t.Errorf("records %v, want the first ADD's", st)
	}
	for _, r := range k.weftd.requests() {
		if _, ok := r.(cniproto.DelRequest); ok {
			t.Errorf("weftd got a Del: %+v", r)
		}
	}
}
