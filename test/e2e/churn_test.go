package e2e

// Churn and leaks: synthetic peers (leases written straight into etcd, with valid vxlan BackendData and public
// addresses on a range nothing uses) come, go, change their VtepMAC, and have their subnet taken over in place by
// a new node (the old holder's expiry unseen, as after a watch that broke and re-listed), at a steady rate against
// one real weftd.
// At the end the kernel entries on flannel.1 are exactly those the surviving leases require, and weftd's
// goroutines and memory are back where they were before the churn.

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/lab"
	"github.com/weftnet/weft/subnet"
)

const (
	churnPeers = 200
	churnRate  = 20 // changes per second
	// churnFor is the 5 minutes; the drill's wall time is about this plus a minute.
	churnFor = 5 * time.Minute
	// leakSlack is the share goroutines and RSS may grow across the churn, and the absolute slack for goroutines.
	leakSlack           = 0.10
	leakSlackGoroutines = 5
)

// churnPeer is one synthetic lease: a fixed subnet, held by the node at public, whose VtepMAC changes when the
// node "recreates its device" and both of which change when another node takes the subnet over.
type churnPeer struct {
	subnet netip.Prefix
	public netip.Addr
	mac    string
	live   bool
}

func (p *churnPeer) key() string {
	return "/coreos.com/network/subnets/" + subnet.LeaseKey(p.subnet, netip.Prefix{})
}

func (p *churnPeer) value() string {
	data, _ := json.Marshal(map[string]any{"VNI": 1, "VtepMAC": p.mac})
	b, _ := json.Marshal(&subnet.LeaseAttrs{PublicIP: p.public, BackendType: "vxlan", BackendData: data})
	return string(b)
}

// kernelEntries renders the routes, neighbours and FDB entries on a node's flannel.1 as sorted lines, the form
// the expected state is computed in.
func kernelEntries(n *lab.Node) ([]string, error) {
	var out []string
	var routes []struct{ Dst, Gateway string }
	var neigh []struct {
		Dst    string
		Lladdr string
	}
	var fdb []struct{ Mac, Dst string }
	for _, q := range []struct {
		args []string
		into any
	}{
		{[]string{"ip", "-j", "route", "show", "dev", "flannel.1"}, &routes},
		{[]string{"ip", "-j", "neigh", "show", "dev", "flannel.1"}, &neigh},
		{[]string{"bridge", "-j", "fdb", "show", "dev", "flannel.1"}, &fdb},
	} {
		s, err := lab.NSRun(n.Name, q.args...)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(s), q.into); err != nil {
			return nil, fmt.Errorf("%v: %w: %s", q.args, err, s)
		}
	}
	for _, r := range routes {
		out = append(out, "route "+r.Dst+" via "+r.Gateway)
	}
	for _, e := range neigh {
		out = append(out, "neigh "+e.Dst+" lladdr "+e.Lladdr)
	}
	for _, e := range fdb {
		if e.Dst != "" { // entries without dst are the device's own addresses, not weft's
			out = append(out, "fdb "+e.Mac+" dst "+e.Dst)
		}
	}
	sort.Strings(out)
	return out, nil
}

// expectedEntries computes what the vxlan backend must have installed for the leases in etcd other than own.
func expectedEntries(t *testing.T, l *lab.Lab, own string) ([]string, int) {
	t.Helper()
	out, err := l.Etcdctl("get", "--prefix", "/coreos.com/network/subnets/")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var want []string
	peers := 0
	for i := 0; i+1 < len(lines); i += 2 {
		key := strings.TrimPrefix(lines[i], "/coreos.com/network/subnets/")
		if key == own {
			continue
		}
		sn, err := netip.ParsePrefix(strings.Replace(key, "-", "/", 1))
		if err != nil {
			t.Fatalf("lease key %q: %v", lines[i], err)
		}
		var a struct {
			PublicIP    string
			BackendData struct{ VtepMAC string }
		}
		if err := json.Unmarshal([]byte(lines[i+1]), &a); err != nil {
			t.Fatalf("lease %s: %v", key, err)
		}
		gw := sn.Addr().String()
		want = append(want, "route "+sn.String()+" via "+gw, "neigh "+gw+" lladdr "+a.BackendData.VtepMAC,
			"fdb "+a.BackendData.VtepMAC+" dst "+a.PublicIP)
		peers++
	}
	sort.Strings(want)
	return want, peers
}

// usage is weftd's goroutine count (from /metrics) and resident memory (from /proc).
type usage struct {
	goroutines int
	rssKB      int
}

var goGoroutines = regexp.MustCompile(`(?m)^go_goroutines (\d+)$`)
var vmRSS = regexp.MustCompile(`(?m)^VmRSS:\s+(\d+) kB$`)

func measure(t *testing.T, n *lab.Node, port int) usage {
	t.Helper()
	_, metrics, err := lab.HTTPGet(n.Name, fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	m := goGoroutines.FindStringSubmatch(metrics)
	if m == nil {
		t.Fatalf("/metrics has no go_goroutines")
	}
	pid := n.Daemon.Cmd.Process.Pid
	if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) != "weftd" {
		t.Fatalf("pid %d is %q, not weftd", pid, comm)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	r := vmRSS.FindStringSubmatch(string(status))
	if r == nil {
		t.Fatalf("/proc/%d/status has no VmRSS", pid)
	}
	var u usage
	u.goroutines, _ = strconv.Atoi(m[1])
	u.rssKB, _ = strconv.Atoi(r[1])
	return u
}

// within tells whether after is at most leakSlack above before (plus slack, absolute).
func within(before, after, slack int) bool {
	return float64(after) <= float64(before)*(1+leakSlack)+float64(slack)
}

func TestChurn(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	if err := e.lab.PutNetConfig(fmt.Sprintf(netV4, "vxlan")); err != nil {
		t.Fatal(err)
	}
	const port = 10300
	e.start(0, e.weftd, lab.DaemonOptions{HealthPort: port})
	n := e.lab.Nodes[0]
	own := netip.MustParsePrefix(strings.Replace(n.EnvValue("FLANNEL_SUBNET"), ".1/", ".0/", 1))
	ownKey := subnet.LeaseKey(own, netip.Prefix{})

	var peers []*churnPeer
	macs, takers := 0, 0
	newHolder := func() netip.Addr { takers++; return netip.AddrFrom4([4]byte{10, 252, byte(takers >> 8), byte(takers)}) }
	newMAC := func() string {
		macs++
		return fmt.Sprintf("0a:58:%02x:%02x:%02x:%02x", macs>>24&255, macs>>16&255, macs>>8&255, macs&255)
	}
	for x := 0; len(peers) < churnPeers; x++ {
		sn := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 244, byte(x), 0}), 24)
		if sn == own {
			continue
		}
		peers = append(peers, &churnPeer{subnet: sn, public: netip.AddrFrom4([4]byte{10, 251, byte(x), 1}), mac: newMAC()})
	}
	kv := e.lab.KV()
	defer kv.Close()
	// settled waits until the kernel holds exactly what the leases in etcd require.
	settled := func(what string) int {
		t.Helper()
		var want, got []string
		var live int
		if err := lab.WaitFor(60*time.Second, what, func() (bool, error) {
			var err error
			want, live = expectedEntries(t, e.lab, ownKey)
			got, err = kernelEntries(n)
			return err == nil && strings.Join(got, "\n") == strings.Join(want, "\n"), err
		}); err != nil {
			t.Fatalf("%v\n%s", err, entriesDiff(want, got))
		}
		return live
	}

	// Warm up: every peer joins at the churn rate, and weftd settles; that is the baseline.
	tick := time.NewTicker(time.Second / churnRate)
	defer tick.Stop()
	for _, p := range peers {
		<-tick.C
		p.live = true
		if err := kv.Put(p.key(), p.value()); err != nil {
			t.Fatal(err)
		}
	}
	settled("all peers routed")
	time.Sleep(5 * time.Second)
	before := measure(t, n, port)
	t.Logf("before the churn (%d peers): %d goroutines, VmRSS %d kB", churnPeers, before.goroutines, before.rssKB)

	// Churn: each change picks a random peer; a live one leaves (1 in 2), recreates its device (a new VtepMAC,
	// 1 in 4) or has its subnet taken over by a new node (1 in 4); an absent one joins.
	rng := rand.New(rand.NewPCG(9, 7))
	changes := map[string]int{}
	w := newWriters(kv, 8)
	began := time.Now()
	for done := 0; time.Since(began) < churnFor; done++ {
		// Catch up when a tick was missed (a slow etcd write, a loaded machine): the rate is the rate.
		if done >= int(time.Since(began).Seconds()*churnRate) {
			<-tick.C
		}
		i := rng.IntN(len(peers))
		p := peers[i]
		switch {
		case !p.live:
			p.live, p.mac = true, newMAC()
			w.put(i, p.key(), p.value())
			changes["join"]++
		case rng.IntN(4) == 0:
			p.mac = newMAC()
			w.put(i, p.key(), p.value())
			changes["new VtepMAC"]++
		case rng.IntN(3) == 0:
			p.public, p.mac = newHolder(), newMAC()
			w.put(i, p.key(), p.value())
			changes["taken over"]++
		default:
			p.live = false
			w.del(i, p.key())
			changes["leave"]++
		}
		if n.Daemon.Exited() {
			t.Fatalf("weftd exited during the churn:\n%s", tailN(n.Daemon.Logs(), 20))
		}
	}
	if err := w.wait(); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, c := range changes {
		total += c
	}
	t.Logf("churn: %d changes (%.1f per second) %v", total, float64(total)/time.Since(began).Seconds(), changes)
	live := settled("kernel state equals the surviving leases")
	alive := 0
	for _, p := range peers {
		if p.live {
			alive++
		}
	}
	if live != alive {
		t.Errorf("etcd holds %d peer leases, the drill left %d", live, alive)
	}
	t.Logf("kernel state on flannel.1 matches the %d surviving peers exactly", live)

	// Memory the runtime freed goes back to the system gradually: wait for it rather than sample once.
	var after usage
	_ = lab.WaitFor(60*time.Second, "usage back", func() (bool, error) {
		after = measure(t, n, port)
		return within(before.goroutines, after.goroutines, leakSlackGoroutines) && within(before.rssKB, after.rssKB, 0), nil
	})
	t.Logf("after the churn (%d peers): %d goroutines (before %d), VmRSS %d kB (before %d kB, %+.1f %%)",
		live, after.goroutines, before.goroutines, after.rssKB, before.rssKB, 100*(float64(after.rssKB)/float64(before.rssKB)-1))
	if !within(before.goroutines, after.goroutines, leakSlackGoroutines) {
		t.Errorf("goroutines grew from %d to %d across the churn", before.goroutines, after.goroutines)
	}
	if !within(before.rssKB, after.rssKB, 0) {
		t.Errorf("VmRSS grew from %d kB to %d kB across the churn (more than %.0f %%)", before.rssKB, after.rssKB, 100*leakSlack)
	}
}

// entriesDiff lists what is missing from and extra in the kernel.
func entriesDiff(want, got []string) string {
	in := map[string]int{}
	for _, w := range want {
		in[w]++
	}
	for _, g := range got {
		in[g]--
	}
	var b strings.Builder
	for k, v := range in {
		switch {
		case v > 0:
			fmt.Fprintf(&b, "missing: %s\n", k)
		case v < 0:
			fmt.Fprintf(&b, "extra:   %s\n", k)
		}
	}
	return b.String()
}

// writers apply the churn's writes in parallel lanes, so that a slow etcd fsync does not hold the churn below
// its rate; one peer's changes always go down the same lane, in order.
type writers struct {
	kv    *lab.EtcdKV
	lanes []chan func() error
	done  chan error
}

func newWriters(kv *lab.EtcdKV, n int) *writers {
	w := &writers{kv: kv, done: make(chan error, n)}
	for i := 0; i < n; i++ {
		c := make(chan func() error, 256)
		w.lanes = append(w.lanes, c)
		go func() {
			var first error
			for f := range c {
				if err := f(); err != nil && first == nil {
					first = err
				}
			}
			w.done <- first
		}()
	}
	return w
}

func (w *writers) put(peer int, key, value string) {
	w.lanes[peer%len(w.lanes)] <- func() error { return w.kv.Put(key, value) }
}

func (w *writers) del(peer int, key string) {
	w.lanes[peer%len(w.lanes)] <- func() error { return w.kv.Delete(key) }
}

// wait lets every lane finish and returns the first error.
func (w *writers) wait() error {
	for _, c := range w.lanes {
		close(c)
	}
	var first error
	for range w.lanes {
		if err := <-w.done; err != nil && first == nil {
			first = err
		}
	}
	return first
}
