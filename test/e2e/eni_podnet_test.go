package e2e

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/cloud/aliyun/sim"
	"github.com/weftnet/weft/internal/lab"
)

// Per-pod vSwitch and security groups on alisim's fabric (backend/eni podnet.go): the node's zone has two
// configured vSwitches (ordered: the first is the default's); a pod annotated with the second vSwitch and another
// security group (allowed by pod_security_groups) lands on an ENI weftd creates in that vSwitch with exactly that
// group, as the cloud's DescribeNetworkInterfaces says, and is reachable from a pod of the other node; an
// unannotated pod stays on an ENI of the default vSwitch and group; a malformed annotation fails the ADD naming
// it; a third class when the instance (ecs.e2e.eni3: 2 secondary ENIs) has no ENI slot left gets the limit error
// naming the class.
func TestENIPodNetworks(t *testing.T) {
	t.Parallel()
	e := newENIEnv(t, 2, podNetState)
	e.keepLogs()
	e.conf = podNetConf(e.conf, "")
	n1, n2 := e.nodes[0], e.nodes[1]
	e.startENI(n1, 10510)
	e.startENI(n2, 10511)
	e.waitReady(n1, 90*time.Second)
	e.waitReady(n2, 90*time.Second)

	eniOf := func(ip string) aliyun.ENI {
		t.Helper()
		enis := e.enisOf("i-alisim0001")
		id := eniHolding(enis, ip)
		for _, x := range enis {
			if x.ID == id {
				return x
			}
		}
		t.Fatalf("no ENI of i-alisim0001 holds %s: %+v", ip, enis)
		return aliyun.ENI{}
	}

	plain, err := e.fixedPod(n1, "plain", nil, nil)
	if err != nil {
		t.Fatalf("unannotated pod: %v\n%s", err, tailN(n1.Daemon.Logs(), 30))
	}
	if x := eniOf(plain.IP); x.VSwitchID != "vsw-alisim0001" || !slices.Equal(x.SecurityGroupIDs, []string{"sg-alisim0001"}) {
		t.Errorf("unannotated pod %s on %s in %s with groups %v, want the default vsw-alisim0001 and [sg-alisim0001]", plain.IP, x.ID, x.VSwitchID, x.SecurityGroupIDs)
	}

	own, err := e.fixedPod(n1, "own", nil, map[string]string{"k8s.aliyun.com/vswitches": "vsw-alisim0003", "k8s.aliyun.com/security-groups": "sg-alisim0002"})
	if err != nil {
		t.Fatalf("annotated pod: %v\n%s", err, tailN(n1.Daemon.Logs(), 30))
	}
	x := eniOf(own.IP)
	if x.VSwitchID != "vsw-alisim0003" || !slices.Equal(x.SecurityGroupIDs, []string{"sg-alisim0002"}) {
		t.Errorf("annotated pod %s on %s in %s with groups %v, want vsw-alisim0003 and exactly [sg-alisim0002]", own.IP, x.ID, x.VSwitchID, x.SecurityGroupIDs)
	}
	if !netip.MustParsePrefix("192.168.2.0/24").Contains(netip.MustParseAddr(own.IP)) {
		t.Errorf("annotated pod's address %s, want one of vsw-alisim0003's 192.168.2.0/24", own.IP)
	}

	remote, err := e.fixedPod(n2, "remote", nil, nil)
	if err != nil {
		t.Fatalf("pod on n2: %v\n%s", err, tailN(n2.Daemon.Logs(), 30))
	}
	for _, p := range []*eniPod{own, plain} {
		if err := lab.WaitFor(15*time.Second, "remote -> "+p.Name, func() (bool, error) { return remote.ping(p.IP) == nil, nil }); err != nil {
			t.Errorf("n2's pod cannot reach %s (%s): %v", p.Name, p.IP, err)
		}
	}
	if err := lab.WaitFor(15*time.Second, "own -> remote", func() (bool, error) { return own.ping(remote.IP) == nil, nil }); err != nil {
		t.Errorf("the annotated pod cannot reach n2's pod: %v", err)
	}

	_, err = e.fixedPod(n1, "bad", nil, map[string]string{"k8s.aliyun.com/security-groups": "sg-alisim0002;sg-x"})
	if err == nil || !strings.Contains(err.Error(), "k8s.aliyun.com/security-groups") {
		t.Errorf("malformed annotation: %v, want an ADD error naming k8s.aliyun.com/security-groups", err)
	}

	// A third class (vsw-alisim0001 with sg-alisim0002): both secondary ENI slots are taken (the default's and
	// own's), so the limit error, naming the class, while the node's address limit is not reached.
	_, err = e.fixedPod(n1, "third", nil, map[string]string{"k8s.aliyun.com/vswitches": "vsw-alisim0001", "k8s.aliyun.com/security-groups": "sg-alisim0002"})
	if err == nil || !strings.Contains(err.Error(), "limit") || !strings.Contains(err.Error(), "sg-alisim0002") {
		t.Errorf("third class with no ENI slot left: %v, want the limit error naming the class", err)
	}
	if n := len(e.enisOf("i-alisim0001")); n != 3 {
		t.Errorf("i-alisim0001 has %d ENIs, want 3 (the primary, the default's, own's)", n)
	}
}

// podNetState adds vsw-alisim0003 (192.168.2.0/24) to zone cn-hangzhou-h, beside vsw-alisim0001.
func podNetState(st *sim.State) {
	st.VSwitches = append(st.VSwitches, &sim.VSwitch{ID: "vsw-alisim0003", VPCID: "vpc-alisim0001", Zone: "cn-hangzhou-h",
		CIDR: "192.168.2.0/24", RouteTableID: "vtb-alisim0001"})
	rt := st.RouteTables[0]
	rt.Entries = append(rt.Entries, &sim.RouteEntry{ID: "rte-sys-vsw3", Dst: "192.168.2.0/24", NextHopType: "local", Type: "System", Modified: rt.Created})
}

// podNetConf is the eni env's net-conf with vsw-alisim0003 configured after vsw-alisim0001 (ordered) and
// sg-alisim0002 allowed for pods.
func podNetConf(inner func(*lab.Node) string, extra string) func(*lab.Node) string {
	return func(n *lab.Node) string {
		c := strings.Replace(inner(n), `"cn-hangzhou-h":["vsw-alisim0001"]`, `"cn-hangzhou-h":["vsw-alisim0001","vsw-alisim0003"]`, 1)
		return strings.Replace(c, `"Type":"eni",`, `"Type":"eni","vswitch_selection_policy":"ordered","pod_security_groups":["sg-alisim0002"],`+extra, 1)
	}
}

// Exclusive mode honours the annotations too: the annotated pod's whole ENI (its eth0) is created in
// vsw-alisim0003 with exactly sg-alisim0002, the unannotated pod's is the default's, and the two reach each other.
func TestENIPodNetworksExclusive(t *testing.T) {
	t.Parallel()
	e := newENIEnv(t, 1, podNetState)
	e.keepLogs()
	e.conf = podNetConf(e.conf, `"Mode":"exclusive","service_cidr":"10.96.0.0/12",`)
	n := e.nodes[0]
	e.startENI(n, 10512)
	e.waitReady(n, 90*time.Second)
	// The annotated pod first: the node's two ENI slots are the warm default ENI and the one made for its class
	// (after the unannotated pod took the warm one, the warm pool would take the second slot for a new warm ENI).
	primary := func(p *eniPod) aliyun.ENI {
		t.Helper()
		for _, x := range e.enisOf("i-alisim0001") {
			if x.PrimaryIP.String() == p.IP {
				link, err := lab.NSRun(p.ns, "ip", "-o", "link", "show", "eth0")
				if err != nil || !strings.Contains(link, strings.ToLower(x.MAC)) {
					t.Errorf("pod %s's eth0: %q %v, want the ENI %s (%s)", p.Name, link, err, x.ID, x.MAC)
				}
				return x
			}
		}
		t.Fatalf("no ENI of the node has the primary address %s (pod %s)", p.IP, p.Name)
		return aliyun.ENI{}
	}
	own, err := e.fixedPod(n, "xown", nil, map[string]string{"k8s.aliyun.com/vswitches": "vsw-alisim0003", "k8s.aliyun.com/security-groups": "sg-alisim0002"})
	if err != nil {
		t.Fatalf("annotated exclusive pod: %v\n%s", err, tailN(n.Daemon.Logs(), 30))
	}
	if x := primary(own); x.VSwitchID != "vsw-alisim0003" || !slices.Equal(x.SecurityGroupIDs, []string{"sg-alisim0002"}) {
		t.Errorf("annotated exclusive pod's ENI %s in %s with %v, want vsw-alisim0003 and exactly [sg-alisim0002]", x.ID, x.VSwitchID, x.SecurityGroupIDs)
	}
	plain, err := e.fixedPod(n, "xplain", nil, nil)
	if err != nil {
		t.Fatalf("unannotated exclusive pod: %v\n%s", err, tailN(n.Daemon.Logs(), 30))
	}
	if x := primary(plain); x.VSwitchID != "vsw-alisim0001" || !slices.Equal(x.SecurityGroupIDs, []string{"sg-alisim0001"}) {
		t.Errorf("unannotated exclusive pod's ENI %s in %s with %v, want vsw-alisim0001 and [sg-alisim0001]", x.ID, x.VSwitchID, x.SecurityGroupIDs)
	}
	if err := lab.WaitFor(15*time.Second, "xown -> xplain", func() (bool, error) { return own.ping(plain.IP) == nil, nil }); err != nil {
		t.Errorf("the annotated exclusive pod cannot reach the other: %v", err)
	}
}
