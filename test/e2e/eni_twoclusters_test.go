package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/cloud/aliyun/sim"
	"github.com/weftnet/weft/internal/lab"
)

// Two clusters in one VPC (issue 11, item 7): an eni cluster (Kubernetes mode, pods on VPC addresses) and an
// ali-vpc cluster (etcd mode, pod subnets as route entries) on instances of one VPC. Their pods reach each other
// directly through the VPC in both directions, and each cluster's collector leaves the other's cloud objects
// alone: the eni cluster deletes only detached ENIs carrying its own cluster tag (never another cluster's, never
// an untagged one), and the ali-vpc cluster's route reconcile leaves the ENIs alone and keeps its own entries.
func TestENITwoClustersOneVPC(t *testing.T) {
	t.Parallel()
	long := time.Now().Add(-time.Hour)
	planted := func(id, mac, ip string, tags map[string]string) *sim.ENI {
		return &sim.ENI{ID: id, VSwitchID: "vsw-alisim0001", Type: "Secondary", MAC: mac, PrimaryIP: ip, Tags: tags,
			SecurityGroupIDs: []string{"sg-alisim0001"}, CreationTime: long, Status: "Available"}
	}
	e := newENIEnv(t, 3, func(st *sim.State) {
		st.ENIs = append(st.ENIs,
			planted("eni-twoc-own", "00:16:3e:7c:00:01", "192.168.0.201",
				map[string]string{"weft.io/cluster": "e2e-eni", "weft.io/node": "a-node-long-gone", "weft.io/created-by": "weftd"}),
			planted("eni-twoc-other", "00:16:3e:7c:00:02", "192.168.0.202",
				map[string]string{"weft.io/cluster": "another-cluster", "weft.io/node": "a-node-long-gone", "weft.io/created-by": "weftd"}),
			planted("eni-twoc-untagged", "00:16:3e:7c:00:03", "192.168.0.203", nil))
	})
	// The ali-vpc cluster keeps its state in the lab's etcd: nodes 2 and 3.
	if err := e.lab.PutNetConfig(fmt.Sprintf(vpcConf, 200)); err != nil {
		t.Fatal(err)
	}
	e.conf = func(n *lab.Node) string { // the eni cluster's collector with the shortest grace it accepts
		return fmt.Sprintf(`{"EnableIPv4":true,"Backend":{"Type":"eni","vswitches":{"cn-hangzhou-h":["vsw-alisim0001"],"cn-hangzhou-i":["vsw-alisim0002"]},`+
			`"security_group":"sg-alisim0001","cluster_id":"e2e-eni","min_pool_size":1,"warm_pool_target":2,"max_pool_size":4,"eni_gc_grace":"1m",`+
			`"checkpoint":%q,"socket":%q}}`, n.Dir+"/eni/checkpoint.json", n.Dir+"/eni.sock")
	}
	eniNode, vpcNodes := e.nodes[0], e.nodes[1:]
	e.startENI(eniNode, 10460)
	for i, n := range vpcNodes {
		e.start(n, 10461+i)
	}
	e.waitReady(eniNode, 90*time.Second)
	var vpcPods []*lab.Pod
	for i, n := range vpcNodes {
		if err := lab.WaitFor(90*time.Second, n.Name+" ready (ali-vpc)", func() (bool, error) {
			code, _ := readyz(n, 10461+i)
			return code == 200, nil
		}); err != nil {
			t.Fatalf("%v\n%s", err, tailN(n.Daemon.Logs(), 30))
		}
		p, err := n.AddPod("p", lab.CNIOptions{Plugin: e.vpcEnv.plugin}) // the flannel meta-plugin, not weft-eni
		if err != nil {
			t.Fatal(err)
		}
		vpcPods = append(vpcPods, p)
	}
	a, err := e.addPod(eniNode, "a")
	if err != nil {
		t.Fatalf("eni pod: %v\n%s", err, tailN(eniNode.Daemon.Logs(), 30))
	}

	for _, p := range vpcPods {
		if err := lab.WaitFor(30*time.Second, "eni pod -> ali-vpc pod "+p.IP4, func() (bool, error) { return a.ping(p.IP4) == nil, nil }); err != nil {
			t.Errorf("the eni cluster's pod %s does not reach the ali-vpc cluster's pod %s: %v\nentries %v", a.IP, p.IP4, err, e.entries())
		}
		if err := lab.WaitFor(30*time.Second, "ali-vpc pod -> eni pod "+a.IP, func() (bool, error) { return p.Ping(a.IP, 1) == nil, nil }); err != nil {
			t.Errorf("the ali-vpc cluster's pod %s does not reach the eni cluster's pod %s: %v", p.IP4, a.IP, err)
		}
	}

	// The eni collector's first pass starts the grace clock, the next one after a minute deletes its own ENI.
	if err := lab.WaitFor(3*time.Minute, "the eni cluster deletes its own detached ENI", func() (bool, error) {
		_, ok := e.world.ENI("eni-twoc-own")
		return !ok, nil
	}); err != nil {
		t.Fatalf("%v\n%s", err, grepLines(eniNode.Daemon.Logs(), "eni-twoc"))
	}
	for _, id := range []string{"eni-twoc-other", "eni-twoc-untagged"} {
		if x, ok := e.world.ENI(id); !ok {
			t.Errorf("%s deleted by the eni cluster's collector; another cluster's or an untagged ENI must stay", id)
		} else if x.Status != "Available" {
			t.Errorf("%s is %s after the eni cluster's collector ran, want it left Available", id, x.Status)
		}
	}
	// The ali-vpc cluster's table holds exactly its two nodes' entries, and nothing of the eni cluster.
	if got := e.entries(); len(got) != len(vpcNodes) {
		t.Errorf("route entries %v, want the ali-vpc cluster's %d", got, len(vpcNodes))
	}
	for _, l := range e.entries() {
		if strings.Contains(l, "i-alisim0001") {
			t.Errorf("an entry for the eni node: %s", l)
		}
	}
	// The eni node's own ENIs are still attached: the ali-vpc cluster touched none.
	if len(e.enisOf("i-alisim0001")) < 2 {
		t.Errorf("the eni node's ENIs: %+v", e.enisOf("i-alisim0001"))
	}
}
