package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/cloud/aliyun/sim"
	"github.com/weftnet/weft/internal/lab"
	"github.com/weftnet/weft/internal/testenv"
)

// TestENITrunk: an exclusive node of ecs.c7.xlarge (3 ENIs, 7 with trunking) with enable_eni_trunking and
// trunk_link macvlan (alisim's fabric) holds 5 pods: 1 on an ordinary ENI and 4 on member ENIs of the one trunk
// ENI it makes, as weft plan's exclusive-trunk figure says; the sixth gets the limit. Every pod reaches the others
// and an instance outside the cluster through the fabric; the trunk stays on the node and is no pod's. weftd
// restarted with the pods alive adopts their members; DEL gives a member back (its link leaves the node) for the
// next pod, also after the pod's namespace went first.
func TestENITrunk(t *testing.T) {
	t.Parallel()
	const port = 10520
	const itype = "ecs.c7.xlarge"
	e := newENIEnv(t, 1, func(st *sim.State) { st.Instances[0].Type = itype }) // i-alisim0001 192.168.0.10; outside 192.168.1.11
	e.keepLogs()
	n := e.nodes[0]
	conf := e.conf
	e.conf = func(n *lab.Node) string {
		return strings.Replace(conf(n), `"Type":"eni",`, `"Type":"eni","Mode":"exclusive","enable_eni_trunking":true,"trunk_link":"macvlan",`, 1)
	}
	ctx := context.Background()
	e.startENI(n, port)
	e.waitReady(n, 90*time.Second)

	onHost := func(mac string) bool {
		out, err := lab.NSRun(n.Name, "ip", "-o", "link")
		return err == nil && strings.Contains(out, strings.ToLower(mac))
	}
	eniOf := func(ip string) aliyun.ENI {
		t.Helper()
		for _, x := range e.enisOf("i-alisim0001") {
			if x.PrimaryIP.String() == ip {
				return x
			}
		}
		t.Fatalf("no ENI of the node has the primary address %s", ip)
		return aliyun.ENI{}
	}
	trunks := func() []aliyun.ENI {
		var out []aliyun.ENI
		for _, x := range e.enisOf("i-alisim0001") {
			if x.Type == "Trunk" {
				out = append(out, x)
			}
		}
		return out
	}
	// whole asserts the pod holds its ENI (ordinary or member) as eth0 with its primary address.
	whole := func(p *eniPod) aliyun.ENI {
		t.Helper()
		x := eniOf(p.IP)
		link, err := lab.NSRun(p.ns, "ip", "-o", "link", "show", "eth0")
		if err != nil || !strings.Contains(link, strings.ToLower(x.MAC)) {
			t.Fatalf("pod %s's eth0: %q %v, want the ENI %s's MAC %s", p.Name, link, err, x.ID, x.MAC)
		}
		if x.Type == "Member" && !strings.Contains(link, "macvlan") && !strings.Contains(link, "@") {
			t.Errorf("pod %s's member ENI %s: eth0 %q is not a link on the trunk", p.Name, x.ID, link)
		}
		addr, _ := lab.NSRun(p.ns, "ip", "-o", "-4", "addr", "show", "eth0")
		if !strings.Contains(addr, p.IP+"/32") {
			t.Fatalf("pod %s: eth0 %q, want %s/32", p.Name, addr, p.IP)
		}
		if onHost(x.MAC) {
			t.Fatalf("the ENI %s of pod %s is still in the node's namespace", x.ID, p.Name)
		}
		return x
	}
	var pods []*eniPod
	members := 0
	for i := 0; i < 5; i++ {
		p, err := e.addPod(n, fmt.Sprintf("t%d", i))
		if err != nil {
			t.Fatalf("pod %d: %v\n%s", i, err, tailN(n.Daemon.Logs(), 30))
		}
		if whole(p).Type == "Member" {
			members++
		}
		pods = append(pods, p)
	}
	tr := trunks()
	if members != 4 || len(tr) != 1 {
		t.Fatalf("%d pods on members (want 4), %d trunk ENIs (want 1)", members, len(tr))
	}
	trunk := tr[0]
	for _, p := range pods {
		if p.IP == trunk.PrimaryIP.String() {
			t.Fatalf("pod %s got the trunk's address %s", p.Name, p.IP)
		}
	}
	if !onHost(trunk.MAC) {
		t.Fatalf("the trunk ENI %s (%s) is not on the node", trunk.ID, trunk.MAC)
	}

	t.Run("the node advertises 5 exclusive ENIs, weft plan's figure", func(t *testing.T) {
		if err := lab.WaitFor(10*time.Second, "node status", func() (bool, error) {
			nd, err := e.kube.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			q := nd.Status.Capacity["aliyun/eni"]
			return q.String() == "5", nil
		}); err != nil {
			nd, _ := e.kube.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			t.Fatalf("%v: capacity %v", err, nd.Status.Capacity)
		}
		out, err := lab.NSRun(n.Name, "env", "VPC_ENDPOINT="+gw+":8900", "ECS_ENDPOINT="+gw+":8900", "ALICLOUD_CLIENT_SCHEME=HTTP",
			testenv.WeftBin(t, "weft"), "plan", "--instance-type-source", "api", "--instance-type", itype,
			"--vpc-cidr", "192.168.0.0/16", "--vswitch-cidr", "192.168.0.0/24,192.168.1.0/24", "--nodes", "2", "-o", "json")
		var plan struct {
			Input struct {
				InstanceTypes []struct {
					ID                    string `json:"id"`
					ExclusiveTrunkENIPods int    `json:"exclusiveTrunkENIPods"`
				} `json:"instanceTypes"`
			} `json:"input"`
		}
		if jerr := json.Unmarshal([]byte(out), &plan); jerr != nil || len(plan.Input.InstanceTypes) != 1 {
			t.Fatalf("weft plan: %v %v: %s", err, jerr, out)
		}
		if got := plan.Input.InstanceTypes[0].ExclusiveTrunkENIPods; got != 5 {
			t.Errorf("weft plan says %d exclusive pods with trunking on %s, the daemon enforces 5", got, itype)
		}
	})
	t.Run("a sixth pod gets the limit of 5", func(t *testing.T) {
		_, err := e.addPod(n, "t5")
		if err == nil || !strings.Contains(err.Error(), "exclusive ENI limit with trunking") || !strings.Contains(err.Error(), "holds 5 pods") {
			t.Fatalf("ADD beyond the limit: %v, want the trunking limit of 5", err)
		}
		e.dropSandbox(e.pods["t5"])
	})
	t.Run("every pod reaches the outside instance and the others, with real traffic", func(t *testing.T) {
		for i, p := range pods {
			if got := sourceSeenBy(t, e.outside, "192.168.1.11", 7401+i, p.ns); got != p.IP {
				t.Errorf("the outside instance saw %s from pod %s, want %s", got, p.Name, p.IP)
			}
			q := pods[(i+1)%len(pods)]
			if got := sourceSeenBy(t, q.ns, q.IP, 7411+i, p.ns); got != p.IP {
				t.Errorf("pod %s saw %s from pod %s, want %s", q.Name, got, p.Name, p.IP)
			}
		}
	})
	t.Run("weftd restarted with the member pods alive adopts them", func(t *testing.T) {
		before := map[string]bool{}
		for _, x := range e.enisOf("i-alisim0001") {
			before[x.ID] = true
		}
		if err := n.Daemon.Stop(); err != nil {
			t.Logf("weftd's exit on SIGTERM: %v", err)
		}
		e.startENI(n, port)
		e.waitReady(n, 60*time.Second)
		for _, p := range pods {
			if err := e.rts[n.Name].Check(ctx, p.Sandbox); err != nil {
				t.Errorf("CHECK %s after the restart: %v", p.Name, err)
			}
			whole(p)
		}
		if got := sourceSeenBy(t, e.outside, "192.168.1.11", 7421, pods[4].ns); got != pods[4].IP {
			t.Errorf("pod -> outside after the restart: seen as %s", got)
		}
		time.Sleep(6 * time.Second) // a host loop and a settle round
		for _, x := range e.enisOf("i-alisim0001") {
			if !before[x.ID] {
				t.Errorf("the restart made a new ENI %s (%s)", x.ID, x.Type)
			}
		}
		if _, err := e.addPod(n, "t6"); err == nil {
			t.Errorf("after the restart a sixth pod got an ENI")
		}
		e.dropSandbox(e.pods["t6"])
		if logs := n.Daemon.Logs(); strings.Contains(logs, "lost its network") || strings.Contains(logs, "quarantine") {
			t.Errorf("after the restart weftd reports pods lost or addresses quarantined:\n%s", tailN(logs, 30))
		}
	})
	newPod := func(name string) *eniPod { t.Helper(); return e.addPodRetrying(t, n, name) }
	memberPod := func(skip int) int {
		t.Helper()
		for i, p := range pods {
			if i != skip && eniOf(p.IP).Type == "Member" {
				return i
			}
		}
		t.Fatal("no pod on a member ENI")
		return -1
	}
	t.Run("DEL gives the member back (its link leaves the node), and a new pod gets it", func(t *testing.T) {
		i := memberPod(-1)
		x := eniOf(pods[i].IP)
		if err := e.delPod(pods[i]); err != nil {
			t.Fatalf("DEL: %v", err)
		}
		if onHost(x.MAC) {
			t.Errorf("after DEL the member %s's link (%s) is still on the node", x.ID, x.MAC)
		}
		p := newPod("t7")
		if got := whole(p); got.ID != x.ID || got.Type != "Member" {
			t.Fatalf("the new pod got %s (%s), want the freed member %s", got.ID, got.Type, x.ID)
		}
		if got := sourceSeenBy(t, e.outside, "192.168.1.11", 7422, p.ns); got != p.IP {
			t.Errorf("the new pod -> outside: seen as %s", got)
		}
		pods[i] = p
	})
	t.Run("DEL after the pod's namespace went: the member goes back to the pool", func(t *testing.T) {
		i := memberPod(-1)
		x := eniOf(pods[i].IP)
		e.dropSandbox(pods[i])
		if err := e.delPod(pods[i]); err != nil {
			t.Fatalf("DEL without the namespace: %v", err)
		}
		p := newPod("t8")
		if got := whole(p); got.ID != x.ID {
			t.Fatalf("the new pod got %s, want the freed member %s", got.ID, x.ID)
		}
		if got := sourceSeenBy(t, e.outside, "192.168.1.11", 7423, p.ns); got != p.IP {
			t.Errorf("the new pod -> outside: seen as %s", got)
		}
		pods[i] = p
		if tr := trunks(); len(tr) != 1 || tr[0].ID != trunk.ID || !onHost(trunk.MAC) {
			t.Errorf("the trunk changed: %v", tr)
		}
	})
}
