package datapath

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/internal/nsutil"
	"github.com/weftnet/weft/internal/testenv"
)

// testNet is a fresh "host" namespace and a fresh "pod" namespace (reached by path, as the CNI plugin is given
// it). The datapath functions run on a thread inside the host namespace.
type testNet struct {
	t       *testing.T
	hostNs  netns.NsHandle
	host    *netlink.Handle
	podNs   netns.NsHandle
	pod     *netlink.Handle
	podPath string
}

func newTestNet(t *testing.T) *testNet {
	t.Helper()
	hostNs, host := testenv.NewNetns(t)
	podNs, pod := testenv.NewNetns(t)
	return &testNet{t: t, hostNs: hostNs, host: host, podNs: podNs, pod: pod,
		podPath: fmt.Sprintf("/proc/self/fd/%d", int(podNs))}
}

// inHost runs fn on a thread in the host namespace.
func (n *testNet) inHost(fn func()) {
	n.t.Helper()
	testenv.InNetns(n.t, n.hostNs, fn)
}

func (n *testNet) add(p Pod) (Result, error) {
	var res Result
	var err error
	n.inHost(func() { res, err = Add(p) })
	return res, err
}

func (n *testNet) del(p Pod) error {
	var err error
	n.inHost(func() { err = Del(p) })
	return err
}

func (n *testNet) check(p Pod) error {
	var err error
	n.inHost(func() { err = Check(p) })
	return err
}

func (n *testNet) testPod() Pod {
	return Pod{ContainerID: "0123456789abcdef", Netns: n.podPath, IfName: "eth0",
		IP: netip.MustParseAddr("10.9.0.5"), Table: 1005, MTU: 1400}
}

// namedNetns is a pod namespace bind-mounted under /run/netns, as container runtimes make them, that the test
// can delete (unmount and close) while a veth end sits in it.
func namedNetns(t *testing.T) (path string, remove func()) {
	t.Helper()
	testenv.RequireRoot(t)
	if err := os.MkdirAll("/run/netns", 0o755); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join("/run/netns", fmt.Sprintf("weft-dp-test-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "_")))
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	ns := func() netns.NsHandle {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		orig, err := netns.Get()
		if err != nil {
			t.Fatal(err)
		}
		defer orig.Close()
		ns, err := netns.New()
		if err != nil {
			t.Fatal(err)
		}
		if err := netns.Set(orig); err != nil {
			t.Fatal(err)
		}
		return ns
	}()
	if err := unix.Mount(fmt.Sprintf("/proc/self/fd/%d", int(ns)), path, "none", unix.MS_BIND, ""); err != nil {
		ns.Close()
		os.Remove(path)
		t.Fatalf("bind-mount netns at %s: %v", path, err)
	}
	ns.Close()
	removed := false
	remove = func() {
		if removed {
			return
		}
		removed = true
		if err := unix.Unmount(path, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", path, err)
		}
		if err := os.Remove(path); err != nil {
			t.Errorf("remove %s: %v", path, err)
		}
	}
	t.Cleanup(remove)
	return path, remove
}

// dump renders a namespace's links, addresses, routes (all tables, both families), rules and neighbours as
// sorted text, to compare a namespace before and after.
func dump(t *testing.T, h *netlink.Handle) string {
	t.Helper()
	var lines []string
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	name := map[int]string{}
	for _, l := range links {
		a := l.Attrs()
		name[a.Index] = a.Name
		lines = append(lines, fmt.Sprintf("link %s type %s mtu %d flags %v mac %s master %d", a.Name, l.Type(),
			a.MTU, a.Flags, a.HardwareAddr, a.MasterIndex))
	}
	addrs, err := h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		lines = append(lines, fmt.Sprintf("addr %s dev %s scope %d", a.IPNet, name[a.LinkIndex], a.Scope))
	}
	routes, err := h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		lines = append(lines, fmt.Sprintf("route %s via %s dev %s table %d proto %d scope %d type %d flags %d",
			netString(r.Dst), r.Gw, name[r.LinkIndex], r.Table, r.Protocol, r.Scope, r.Type, r.Flags))
	}
	rules, err := h.RuleList(netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		lines = append(lines, fmt.Sprintf("rule %d family %d %s proto %d", r.Priority, r.Family, r, r.Protocol))
	}
	neighs, err := h.NeighList(0, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	for _, nb := range neighs {
		lines = append(lines, fmt.Sprintf("neigh %s dev %s lladdr %s state %#x", nb.IP, name[nb.LinkIndex], nb.HardwareAddr, nb.State))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func sameDump(t *testing.T, what, before, after string) {
	t.Helper()
	if before != after {
		t.Errorf("%s changed:\n--- before\n%s\n--- after\n%s", what, before, after)
	}
}

// rulesAt lists h's IPv4 rules at prio as podRule strings (or the rule itself when not pod-shaped).
func rulesAt(t *testing.T, h *netlink.Handle, prio int) []string {
	t.Helper()
	rules, err := h.RuleListFiltered(netlink.FAMILY_V4, &netlink.Rule{Priority: prio}, netlink.RT_FILTER_PRIORITY)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rules {
		if k, ok := podRuleOf(r); ok {
			out = append(out, k.String())
		} else {
			out = append(out, r.String())
		}
	}
	sort.Strings(out)
	return out
}

func addRule(t *testing.T, h *netlink.Handle, k podRule) {
	t.Helper()
	r := k.rule()
	r.Protocol = 0
	if err := h.RuleAdd(r); err != nil {
		t.Fatalf("add %s: %v", k, err)
	}
}

func readSysctlIn(t *testing.T, ns netns.NsHandle, path string) string {
	t.Helper()
	var v string
	if err := nsutil.Do(ns, func() error {
		var err error
		v, err = readSysctl(path)
		return err
	}); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return v
}

func linkByName(t *testing.T, h *netlink.Handle, name string) netlink.Link {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatalf("link %s: %v", name, err)
	}
	return l
}

func mustNotExist(t *testing.T, h *netlink.Handle, name string) {
	t.Helper()
	if _, err := h.LinkByName(name); err == nil {
		t.Errorf("link %s still exists", name)
	} else if !notFound(err) {
		t.Errorf("link %s: %v", name, err)
	}
}

var errInjected = errors.New("injected failure")

// ipNet is an address with its prefix length ("10.9.0.253/24" stays .253).
func ipNet(s string) *net.IPNet {
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	n.IP = ip
	return n
}
