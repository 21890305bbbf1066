package sim

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/weftnet/weft/internal/testenv"
)

// A member ENI's traffic rides its trunk at the member's MAC: a link of the trunk's instance end with the
// member's MAC and address (a macvlan, as this kernel has no 802.1Q: fabric_trunk.go), moved into a pod namespace
// as eth0, reaches the vSwitch gateway and another instance; the same address at another MAC on the trunk gets no
// answer; once the member leaves the trunk its route goes and the pod is cut off.
func TestFabricTrunkMembers(t *testing.T) {
	testenv.RequireRoot(t)
	r := newRig(t)
	fab, tag := newFabric(t, r, "at")
	const inst = "i-alisim0003" // ecs.g7.2xlarge in vsw-alisim0001, beside i-alisim0001 (192.168.0.10)
	trunk := r.newENI("Trunk")
	r.want("", "AttachNetworkInterface", map[string]string{"InstanceId": inst, "NetworkInterfaceId": trunk})
	r.newENI("Secondary") // VLAN 1 taken by another member first, so the tested one is not simply VLAN 1
	first := r.enis(map[string]string{"Type": "Secondary"})[0]["NetworkInterfaceId"].(string)
	r.want("", "AttachNetworkInterface", map[string]string{"InstanceId": inst, "NetworkInterfaceId": first, "TrunkNetworkInstanceId": trunk})
	member := r.newENI("Secondary")
	r.want("", "AttachNetworkInterface", map[string]string{"InstanceId": inst, "NetworkInterfaceId": member, "TrunkNetworkInstanceId": trunk})
	if err := fab.Sync(); err != nil {
		t.Fatal(err)
	}
	te, _ := r.world.ENI(trunk)
	me, _ := r.world.ENI(member)
	if me.DeviceIndex != 2 {
		t.Fatalf("member VLAN %d, want 2", me.DeviceIndex)
	}
	ip := func(args ...string) string { t.Helper(); return ipCmd(t, args...) }
	ping := func(ns, dst string) bool {
		return exec.Command("ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "2", dst).Run() == nil
	}
	ins := fab.NS[inst]
	dev := fmt.Sprintf("eth%d", te.DeviceIndex)
	ip("-n", ins, "link", "set", dev, "up")
	pod := "at" + tag + "-pod"
	podOn := func(name, mac string) {
		t.Helper()
		ip("netns", "add", name)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
		ip("-n", ins, "link", "add", "link", dev, "name", "mv0", "address", mac, "type", "macvlan", "mode", "bridge")
		ip("-n", ins, "link", "set", "mv0", "netns", name)
		ip("-n", name, "link", "set", "mv0", "name", "eth0")
		ip("-n", name, "addr", "add", me.PrimaryIP+"/24", "dev", "eth0")
		ip("-n", name, "link", "set", "eth0", "up")
		ip("-n", name, "route", "add", "default", "via", "192.168.0.253")
	}
	podOn(pod, me.MAC)
	if !ping(pod, "192.168.0.253") || !ping(pod, "192.168.0.10") {
		t.Fatalf("the pod on member %s (VLAN %d) does not reach the gateway / i-alisim0001; router routes: %s", member, me.DeviceIndex,
			ip("-n", fab.Router, "route", "show", "proto", "99"))
	}
	if out := ip("-n", fab.Router, "route", "show", me.PrimaryIP+"/32", "proto", "99"); !strings.Contains(out, "dev "+fab.enis[trunk].name) {
		t.Fatalf("router route to the member: %q", out)
	}
	if out := ip("-n", fab.Router, "neigh", "show", me.PrimaryIP, "dev", fab.enis[trunk].name); !strings.Contains(out, me.MAC) || !strings.Contains(out, "PERMANENT") {
		t.Fatalf("router neighbour of the member: %q", out)
	}
	n := fab.commands
	if err := fab.Sync(); err != nil || fab.commands != n {
		t.Fatalf("a Sync with nothing new: %v, %d commands", err, fab.commands-n)
	}
	ip("-n", pod, "link", "set", "eth0", "down")
	// The member's address at another MAC on the trunk gets no answer: the VPC delivers it to the member's MAC.
	podOn("at"+tag+"-imp", "02:00:00:00:be:ef")
	if ping("at"+tag+"-imp", "192.168.0.10") {
		t.Fatal("the member's address at a foreign MAC on the trunk reached i-alisim0001")
	}
	ip("-n", "at"+tag+"-imp", "link", "set", "eth0", "down")
	ip("-n", pod, "link", "set", "eth0", "up")
	if !ping(pod, "192.168.0.10") {
		t.Fatal("the member pod lost its way after the impostor went down")
	}

	r.want("", "DetachNetworkInterface", map[string]string{"InstanceId": inst, "NetworkInterfaceId": member})
	if err := fab.Sync(); err != nil {
		t.Fatal(err)
	}
	if out := ip("-n", fab.Router, "route", "show", me.PrimaryIP+"/32", "proto", "99"); out != "" {
		t.Fatalf("route to a detached member: %q", out)
	}
	if ping(pod, "192.168.0.10") {
		t.Fatal("a detached member's pod still reaches i-alisim0001")
	}
}
