package e2e

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/cloud/aliyun/sim"
	"github.com/weftnet/weft/internal/lab"
)

// The ali-vpc route controller under faults: every call to the cloud API is throttled 20 % of the time and, when
// it went through, loses its reply 20 % of the time (the write took effect, the client does not know). The table
// also holds an entry made by hand and another weft cluster's entries. 30 nodes: 3 real weftd carrying pod
// traffic and 27 synthetic ones (a lease naming an instance of alisim's world, no daemon).

const (
	synthNodes = 27
	vpcOwner   = "weft:10.244.0.0/16" // the owner tag of this cluster's entries (the Network by default)
)

// synthInstance is the id of synthetic node i (1-based) and its address.
func synthInstance(i int) (string, string) {
	return fmt.Sprintf("i-synth%04d", i), fmt.Sprintf("192.168.1.%d", 100+i)
}

// notOurs are the entries of the table that this cluster must never touch.
var notOurs = []sim.RouteEntry{
	{ID: "rte-handmade0001", Dst: "10.99.0.0/24", NextHopType: "Instance", NextHopID: "i-synth0001", Type: "Custom",
		Name: "ops-bastion", Description: "made by hand"},
	{ID: "rte-otherweft001", Dst: "10.245.1.0/24", NextHopType: "Instance", NextHopID: "i-synth0002", Type: "Custom",
		Name: "weft-10.245.1.0-24", Description: "weft:other"},
	{ID: "rte-otherweft002", Dst: "10.245.2.0/24", NextHopType: "Instance", NextHopID: "i-synth0003", Type: "Custom",
		Name: "weft-10.245.2.0-24", Description: "weft:other"},
}

// tableProblems compares the table with what it must hold: for each live node (destination -> instance) exactly
// one entry of ours, Available, pointing at its instance, and exactly one entry of ours per instance; no entry
// of ours elsewhere (a removed node's); the entries not ours exactly as they were.
func tableProblems(es []sim.RouteEntry, live map[string]string) []string {
	var out []string
	byDst, byHop := map[string][]sim.RouteEntry{}, map[string]int{}
	others := map[string]sim.RouteEntry{}
	for _, x := range es {
		if x.Description != vpcOwner {
			others[x.ID] = x
			continue
		}
		byDst[x.Dst] = append(byDst[x.Dst], x)
		byHop[x.NextHopID]++
	}
	for dst, inst := range live {
		got := byDst[dst]
		switch {
		case len(got) != 1:
			out = append(out, fmt.Sprintf("%d entries for %s (node %s), want 1", len(got), dst, inst))
		case got[0].NextHopType != "Instance" || got[0].NextHopID != inst:
			out = append(out, fmt.Sprintf("%s goes to %s %s, want Instance %s", dst, got[0].NextHopType, got[0].NextHopID, inst))
		case !got[0].DeleteAt.IsZero() || time.Now().Before(got[0].ReadyAt):
			out = append(out, fmt.Sprintf("%s is not Available", dst))
		}
		if byHop[inst] != 1 {
			out = append(out, fmt.Sprintf("%d entries of ours to node %s, want 1", byHop[inst], inst))
		}
	}
	for dst, got := range byDst {
		if _, ok := live[dst]; !ok {
			out = append(out, fmt.Sprintf("entry %s for %s via %s: no live node has it", got[0].ID, dst, got[0].NextHopID))
		}
	}
	for _, want := range notOurs {
		got, ok := others[want.ID]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("entry %s (%s, %q) is gone", want.ID, want.Dst, want.Description))
		case got.Dst != want.Dst || got.NextHopType != want.NextHopType || got.NextHopID != want.NextHopID ||
			got.Description != want.Description || got.Name != want.Name || !got.DeleteAt.IsZero():
			out = append(out, fmt.Sprintf("entry %s changed: %+v, was %+v", want.ID, got, want))
		}
		delete(others, want.ID)
	}
	for id, x := range others {
		out = append(out, fmt.Sprintf("unexpected entry %s %s via %s (%q)", id, x.Dst, x.NextHopID, x.Description))
	}
	sort.Strings(out)
	return out
}

// faultKinds sums the injected faults into reads and writes at each point.
func faultKinds(in map[string]sim.FaultCounts) map[string]int {
	out := map[string]int{}
	for action, c := range in {
		kind := "read"
		if strings.HasPrefix(action, "Create") || strings.HasPrefix(action, "Delete") {
			kind = "write"
		}
		for _, m := range []struct {
			point string
			n     map[string]int
		}{{sim.Before, c.Before}, {sim.After, c.After}} {
			for _, v := range m.n {
				out[kind+" "+m.point] += v
			}
		}
	}
	return out
}

var callsLine = regexp.MustCompile(`(?m)^weft_cloud_api_calls_total\{action="([^"]+)",outcome="([^"]+)"\} ([0-9.e+]+)$`)

// failedCalls sums a /metrics body's non-ok cloud API calls by outcome.
func failedCalls(body string) map[string]float64 {
	out := map[string]float64{}
	for _, m := range callsLine.FindAllStringSubmatch(body, -1) {
		if v, err := strconv.ParseFloat(m[3], 64); err == nil && m[2] != "ok" {
			out[m[2]] += v
		}
	}
	return out
}

func TestAliVPCFaults(t *testing.T) {
	e := newVPCEnvState(t, 3, 200, false, fmt.Sprintf(vpcConf, 200), func(st *sim.State) {
		for i := 1; i <= synthNodes; i++ {
			id, ip := synthInstance(i)
			st.Instances = append(st.Instances, &sim.Instance{ID: id, Type: "ecs.g7.2xlarge", Zone: "cn-hangzhou-i",
				VSwitchID: "vsw-alisim0002", PrimaryIP: ip, MAC: fmt.Sprintf("00:16:3e:00:02:%02x", i), Status: "Running",
				Hostname: fmt.Sprintf("synth%d", i)})
		}
		for _, x := range notOurs {
			x := x
			st.RouteTables[0].Entries = append(st.RouteTables[0].Entries, &x)
		}
	})
	if err := e.srv.SetFault("*", sim.Fault{Errors: map[string]float64{"Throttling.User": 0.2},
		After: map[string]float64{"InternalError": 0.1, sim.Reset: 0.1}}); err != nil {
		t.Fatal(err)
	}
	live := map[string]string{} // destination -> instance, of every node that must be routed
	synth := map[int]string{}   // synthetic node -> its destination
	putLease := func(i int, dst string) {
		t.Helper()
		id, ip := synthInstance(i)
		key := "/coreos.com/network/subnets/" + strings.Replace(dst, "/", "-", 1)
		val := fmt.Sprintf(`{"PublicIP":"%s","PublicIPv6":null,"BackendType":"ali-vpc","BackendData":{"InstanceID":"%s"}}`, ip, id)
		if out, err := e.lab.Etcdctl("put", key, val); err != nil {
			t.Fatalf("put lease %s: %v: %s", key, err, out)
		}
		live[dst], synth[i] = id, dst
	}
	delLease := func(i int) {
		t.Helper()
		dst := synth[i]
		if out, err := e.lab.Etcdctl("del", "/coreos.com/network/subnets/"+strings.Replace(dst, "/", "-", 1)); err != nil {
			t.Fatalf("delete lease of %s: %v: %s", dst, err, out)
		}
		delete(live, dst)
		delete(synth, i)
	}
	converged := func(what string) {
		t.Helper()
		var last []string
		if err := lab.WaitFor(90*time.Second, what, func() (bool, error) {
			last = tableProblems(e.world.CustomEntries(vpcTable), live)
			return len(last) == 0, nil
		}); err != nil {
			t.Fatalf("%v:\n  %s", err, strings.Join(last, "\n  "))
		}
	}
	// The first wave of synthetic nodes exists before the daemons start, outside the range real nodes get.
	const wave1 = 15
	for i := 1; i <= wave1; i++ {
		putLease(i, fmt.Sprintf("10.244.%d.0/24", 100+i))
	}
	var pods []*lab.Pod
	for i, n := range e.nodes {
		e.start(n, 10390+i)
	}
	for i, n := range e.nodes {
		if err := lab.WaitFor(90*time.Second, n.Name+" ready under faults", func() (bool, error) {
			code, _ := readyz(n, 10390+i)
			return code == 200, nil
		}); err != nil {
			t.Fatalf("%v; entries %v", err, e.entries())
		}
		sn := strings.Replace(n.EnvValue("FLANNEL_SUBNET"), ".1/", ".0/", 1)
		live[sn] = instanceOf(n)
		p, err := n.AddPod("p", lab.CNIOptions{Plugin: e.plugin})
		if err != nil {
			t.Fatal(err)
		}
		pods = append(pods, p)
	}
	converged("the first wave and the real nodes routed")
	// The second wave joins one at a time (a write each), at subnets no real node holds.
	next := 100 + wave1
	for i := wave1 + 1; i <= synthNodes; i++ {
		var dst string
		for {
			next++
			if dst = fmt.Sprintf("10.244.%d.0/24", next); live[dst] == "" {
				break
			}
		}
		putLease(i, dst)
		time.Sleep(300 * time.Millisecond)
	}
	// Five synthetic nodes leave while the faults go on.
	for _, i := range []int{2, 5, 9, 17, 23} {
		delLease(i)
		time.Sleep(300 * time.Millisecond)
	}
	converged("30 nodes, 5 removed, under faults")
	if got := len(live); got != 3+synthNodes-5 {
		t.Fatalf("%d live nodes, want %d", got, 3+synthNodes-5)
	}
	// Nodes move to a new subnet (the old lease deleted, a new one for the same instance): the old entry must go,
	// or the node has two. The drill is worth something only if every kind of fault struck reads and writes; few
	// writes are batched into few calls, so nodes keep moving until they have (bounded).
	kinds := faultKinds(e.srv.Injected())
	lacking := func() bool {
		return kinds["read before"] == 0 || kinds["read after"] == 0 || kinds["write before"] == 0 || kinds["write after"] == 0
	}
	for round := 0; round < 2 || (lacking() && round < 12); round++ {
		i := 10 + round
		for {
			next++
			if live[fmt.Sprintf("10.244.%d.0/24", next)] == "" {
				break
			}
		}
		delLease(i)
		putLease(i, fmt.Sprintf("10.244.%d.0/24", next))
		converged(fmt.Sprintf("synthetic node %d moved to 10.244.%d.0/24", i, next))
		kinds = faultKinds(e.srv.Injected())
	}
	t.Logf("faults injected: %v (by action: %+v)", kinds, e.srv.Injected())
	if lacking() {
		t.Errorf("faults injected %v: want reads and writes each struck before and after", kinds)
	}
	// Lost writes happened; the table holds them exactly once.
	ws, _ := e.world.Writes()
	lost := 0
	for _, w := range ws {
		if w.Lost != "" {
			lost++
		}
	}
	t.Logf("%d applied writes, %d of them with the reply lost", len(ws), lost)
	converged("the table still exact after the churn")

	// The leader's client saw the faults: its error metrics show them.
	id, err := e.etcdLeader()
	if err != nil {
		t.Fatal(err)
	}
	leader := e.nodeByIdentity(id)
	if leader == nil {
		t.Fatalf("the election record names %q", id)
	}
	_, body, err := lab.HTTPGet(leader.Name, fmt.Sprintf("http://127.0.0.1:%d/metrics", 10390+leader.Index-1))
	if err != nil {
		t.Fatal(err)
	}
	failed := failedCalls(body)
	t.Logf("leader %s: failed cloud API calls by outcome %v", id, failed)
	if failed["throttled"] == 0 || failed["server_error"]+failed["network_error"] == 0 {
		t.Errorf("leader /metrics shows failed calls %v, want throttled and server_error or network_error:\n%s", failed, grepWeft(body))
	}
	allPairs(t, pods)
}

// tableProblems must see each way the table can be wrong, or the drill above cannot fail.
func TestTableProblems(t *testing.T) {
	live := map[string]string{"10.244.1.0/24": "i-a", "10.244.2.0/24": "i-b"}
	ours := func(id, dst, hop string) sim.RouteEntry {
		return sim.RouteEntry{ID: id, Dst: dst, NextHopType: "Instance", NextHopID: hop, Type: "Custom", Description: vpcOwner}
	}
	good := append([]sim.RouteEntry{ours("r1", "10.244.1.0/24", "i-a"), ours("r2", "10.244.2.0/24", "i-b")}, notOurs...)
	if p := tableProblems(good, live); len(p) != 0 {
		t.Fatalf("a right table: %v", p)
	}
	changed := append([]sim.RouteEntry(nil), good...)
	changed[3].NextHopID = "i-a"
	for name, es := range map[string][]sim.RouteEntry{
		"missing":             append([]sim.RouteEntry{good[0]}, notOurs...),
		"wrong next hop":      append([]sim.RouteEntry{good[0], ours("r2", "10.244.2.0/24", "i-a")}, notOurs...),
		"two for one node":    append(append([]sim.RouteEntry(nil), good...), ours("r3", "10.244.9.0/24", "i-b")),
		"two for one dst":     append(append([]sim.RouteEntry(nil), good...), ours("r3", "10.244.2.0/24", "i-b")),
		"a removed node's":    append(append([]sim.RouteEntry(nil), good...), ours("r3", "10.244.9.0/24", "i-gone")),
		"a foreign one gone":  good[:4],
		"a foreign one moved": changed,
		"a new foreign one":   append(append([]sim.RouteEntry(nil), good...), sim.RouteEntry{ID: "rx", Dst: "10.9.0.0/24", Description: "x"}),
	} {
		if p := tableProblems(es, live); len(p) == 0 {
			t.Errorf("%s: no problem found", name)
		}
	}
}
