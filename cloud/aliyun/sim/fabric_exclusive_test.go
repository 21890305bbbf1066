package sim

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/testenv"
)

// An InUse ENI's instance end moved into a pod's namespace (the eni backend's exclusive mode) and renamed stays
// there through Syncs (nothing made again in the instance, no command run), and keeps its VPC route; once that
// namespace is deleted (which destroys the veth), the next Sync makes the ENI again in its instance as
// eth<DeviceIndex> with its MAC, routed.
func TestFabricENIMovedIntoAPodNamespace(t *testing.T) {
	testenv.RequireRoot(t)
	r := newRig(t)
	fab, tag := newFabric(t, r, "ax")
	id, mac := r.attachENI(fab, nil)
	e, _ := r.world.ENI(id)
	ins := fab.NS["i-alisim0001"]
	dev := fmt.Sprintf("eth%d", e.DeviceIndex)
	ip := func(args ...string) string { t.Helper(); return ipCmd(t, args...) }
	has := func(ns, name string) bool {
		return exec.Command("ip", "-n", ns, "link", "show", name).Run() == nil
	}
	routed := func() bool { // the router's /32 to the ENI's primary goes to the ENI's veth
		out := ip("-n", fab.Router, "route", "show", e.PrimaryIP+"/32", "proto", "99")
		return strings.Contains(out, "dev "+fab.enis[id].name)
	}
	if !has(ins, dev) || !routed() {
		t.Fatalf("attached ENI %s: %s in %s %v, routed %v", id, dev, ins, has(ins, dev), routed())
	}
	pod := "ax" + tag + "-pod"
	ip("netns", "add", pod)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", pod).Run() })
	ip("-n", ins, "link", "set", dev, "down")
	ip("-n", ins, "link", "set", dev, "netns", pod)
	ip("-n", pod, "link", "set", dev, "name", "eth0")
	n := fab.commands
	for range 3 {
		if err := fab.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	if has(ins, dev) {
		t.Fatalf("Sync made %s again in %s while the ENI sits in a pod namespace", dev, ins)
	}
	if !has(pod, "eth0") || !strings.Contains(ip("-n", pod, "link", "show", "eth0"), mac) {
		t.Fatalf("the ENI left the pod namespace: %s", ip("-n", pod, "link", "show"))
	}
	if fab.commands != n || !routed() {
		t.Fatalf("Syncs with the ENI in a pod: %d commands (want 0), routed %v", fab.commands-n, routed())
	}
	ip("netns", "del", pod)
	// The kernel destroys a deleted namespace's devices asynchronously: Sync until the ENI is back.
	deadline := time.Now().Add(20 * time.Second)
	for !has(ins, dev) && time.Now().Before(deadline) {
		if err := fab.Sync(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !has(ins, dev) || !strings.Contains(ip("-n", ins, "link", "show", dev), mac) {
		t.Fatalf("after the pod namespace went: no %s with MAC %s in %s: %s", dev, mac, ins, ip("-n", ins, "link", "show"))
	}
	if !routed() {
		t.Fatalf("after the ENI came back: the router's route to %s: %s", e.PrimaryIP, ip("-n", fab.Router, "route", "show", "proto", "99"))
	}
}
