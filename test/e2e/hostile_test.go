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
	hostile := map[string]string{
		"10.244.200.0-24&fd00:244:0:c8::-64":                                `{not json`,
		"10.244.201.0-24&fd00:244:0:c9::-64":                                `{"PublicIP":"999.1.1.1","BackendType":"vxlan"}`,
		strings.Replace(over.String(), "/", "-", 1) + "&fd00:244:0:ca::-64": good("10.250.0.97", "fd00:250::97", "0e:00:00:00:00:97"),
		"10.244.203.0-24&fd00:244:0:cb::-64":                                good("10.250.0.98", "fd00:250::98", "zz:zz:zz:zz:zz:zz"),
	}
	for k, v := range hostile {
		if _, err := e.lab.Etcdctl("put", "/coreos.com/network/subnets/"+k, v); err != nil {
			t.Fatal(err)
		}
	}
	// A valid peer joins and leaves meanwhile: two more reconciles, which must neither log the bad leases again
	// nor be stopped by them.
	const valid = "10.244.204.0-24&fd00:244:0:cc::-64"
	if _, err := e.lab.Etcdctl("put", "/coreos.com/network/subnets/"+valid, good("10.250.0.96", "fd00:250::96", "0e:00:00:00:00:96")); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if err := waitState(n, "route 10.244.204.0/24", true); err != nil {
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
			if strings.HasPrefix(k, "10.244.203.") {
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
