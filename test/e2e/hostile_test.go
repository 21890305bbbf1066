package e2e

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/lab"
)

// Hostile input from the store (issue 9, item 8): an unreadable lease value, a lease with an absurd public IP,
// one whose subnet overlaps a live node's (another length), and one with an absurd VtepMAC. weftd logs each once
// and skips it: it does not crash, keeps routing the valid peers, removes no valid route, and a valid lease
// coming and going meanwhile is still handled.
func TestHostileLeases(t *testing.T) {
	t.Parallel()
	e, pods := dualVxlan(t, 2)
	nodes := e.lab.Nodes
	if !converged(t, nodes, 60*time.Second) {
		t.FailNow()
	}
	pids := []int{nodes[0].Daemon.Cmd.Process.Pid, nodes[1].Daemon.Cmd.Process.Pid}
	over := netip.PrefixFrom(subnetOf(t, nodes[1], "FLANNEL_SUBNET").Addr(), 23).Masked()
	good := func(ip4, ip6, mac string) string {
		d := fmt.Sprintf(`{"VNI":1,"VtepMAC":%q}`, mac)
		return fmt.Sprintf(`{"PublicIP":%q,"PublicIPv6":%q,"BackendType":"vxlan","BackendData":%s,"BackendV6Data":%s}`, ip4, ip6, d, d)
	}
	// The hostile and valid leases take /24s (and /64s) that neither node holds: the nodes' subnets are chosen
	// at random, and a lease repeating one of them would be refused for overlapping (a different test).
	key := freeKeys(t, nodes, over, 5)
	hostile := map[string]string{
		key[0]: `{not json`,
		key[1]: `{"PublicIP":"999.1.1.1","BackendType":"vxlan"}`,
		strings.Replace(over.String(), "/", "-", 1) + "&" + strings.Split(key[2], "&")[1]: good("10.250.0.97", "fd00:250::97", "0e:00:00:00:00:97"),
		key[3]: good("10.250.0.98", "fd00:250::98", "zz:zz:zz:zz:zz:zz"),
	}
	for k, v := range hostile {
		if _, err := e.lab.Etcdctl("put", "/coreos.com/network/subnets/"+k, v); err != nil {
			t.Fatal(err)
		}
	}
	// A valid peer joins and leaves meanwhile: two more reconciles, which must neither log the bad leases again
	// nor be stopped by them.
	valid := key[4]
	validRoute := "route " + strings.Replace(strings.Split(valid, "&")[0], "-", "/", 1)
	if _, err := e.lab.Etcdctl("put", "/coreos.com/network/subnets/"+valid, good("10.250.0.96", "fd00:250::96", "0e:00:00:00:00:96")); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if err := waitState(n, validRoute, true); err != nil {
			t.Fatalf("%s never routed the valid peer that joined next to the bad leases: %v", n.Name, err)
		}
	}
	if _, err := e.lab.Etcdctl("del", "/coreos.com/network/subnets/"+valid); err != nil {
		t.Fatal(err)
	}
	// Exactly the real peers' entries: nothing for a bad lease, nothing lost of a valid one.
	if !converged(t, nodes, 60*time.Second) {
		t.FailNow()
	}
	reachable(t, pods[0], pods[1], 30*time.Second)
	for i, n := range nodes {
		if n.Daemon.Exited() || n.Daemon.Cmd.Process.Pid != pids[i] {
			t.Fatalf("%s: weftd did not survive the bad leases:\n%s", n.Name, tailN(n.Daemon.Logs(), 20))
		}
		logs := n.Daemon.Logs()
		for k := range hostile {
			if k == key[3] {
				continue // readable, skipped by the backend below
			}
			if c := strings.Count(logs, "ignoring lease /coreos.com/network/subnets/"+k+":"); c != 1 {
				t.Errorf("%s: lease %s logged %d times, want once\n%s", n.Name, k, c, grepLines(logs, k))
			}
		}
		for _, dev := range []string{"flannel.1", "flannel-v6.1"} {
			if c := strings.Count(logs, "peer 10.250.0.98 skipped on "+dev); c != 1 {
				t.Errorf("%s: the absurd VtepMAC logged %d times on %s, want once\n%s", n.Name, c, dev, grepLines(logs, "10.250.0.98"))
			}
		}
	}
}

// waitState waits until node n's flannel.1 state holds (want) or lacks an entry starting with prefix.
func waitState(n *lab.Node, prefix string, want bool) error {
	return lab.WaitFor(30*time.Second, n.Name+" "+prefix, func() (bool, error) {
		got, err := vxlanState(n, "-4", "flannel.1")
		has := false
		for _, g := range got {
			has = has || strings.HasPrefix(g, prefix)
		}
		return has == want, err
	})
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// freeKeys gives n lease keys ("10.244.X.0-24&fd00:244:0:Y::-64") whose IPv4 and IPv6 subnets overlap neither
// node's lease nor avoid.
func freeKeys(t *testing.T, nodes []*lab.Node, avoid netip.Prefix, n int) []string {
	t.Helper()
	var taken4, taken6 []netip.Prefix
	taken4 = append(taken4, avoid)
	for _, nd := range nodes {
		taken4 = append(taken4, subnetOf(t, nd, "FLANNEL_SUBNET"))
		taken6 = append(taken6, subnetOf(t, nd, "FLANNEL_IPV6_SUBNET"))
	}
	free := func(p netip.Prefix, taken []netip.Prefix) bool {
		for _, q := range taken {
			if p.Overlaps(q) {
				return false
			}
		}
		return true
	}
	var keys []string
	for x := 200; x < 256 && len(keys) < n; x++ {
		p4 := netip.MustParsePrefix(fmt.Sprintf("10.244.%d.0/24", x))
		p6 := netip.MustParsePrefix(fmt.Sprintf("fd00:244:0:%x::/64", x))
		if free(p4, taken4) && free(p6, taken6) {
			keys = append(keys, fmt.Sprintf("10.244.%d.0-24&fd00:244:0:%x::-64", x, x))
		}
	}
	if len(keys) < n {
		t.Fatalf("only %d free lease keys for the hostile leases", len(keys))
	}
	return keys
}
