package aliyun_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"testing"
	"time"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/cloud/aliyun/sim"
	"github.com/weftnet/weft/internal/eni/datapath"
	"github.com/weftnet/weft/internal/nsutil"
	"github.com/weftnet/weft/internal/testenv"
)

// The whole trunk path on alisim's fabric, through the real client and weft's datapath: a trunk ENI attached to
// i-alisim0003, a member ENI attached to the trunk, the member's link made on the trunk's interface in the
// instance (datapath.EnsureMemberLink; a macvlan, as this fabric carries members untagged) and moved into a pod by
// AddExclusive; the pod, on the member's address, reaches i-alisim0001 through the VPC; DelExclusive and
// DeleteMemberLink undo it and the member detaches.
func TestFabricPodOnTrunkMember(t *testing.T) {
	testenv.RequireRoot(t)
	f := newFixture(t, sim.DefaultTiming, nil)
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	fab, err := sim.NewFabric(f.world, "aq"+hex.EncodeToString(b))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fab.Close)
	cl := ecsClient(t, f)
	ctx := context.Background()
	const inst = "i-alisim0003"
	settle := func() {
		t.Helper()
		f.clock.Advance(2 * time.Second)
		if err := fab.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	trunk, err := cl.CreateENI(ctx, aliyun.NewENI{VSwitchID: "vsw-alisim0001", SecurityGroupIDs: []string{"sg-alisim0001"}, Trunk: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.AttachENI(ctx, inst, trunk.ID); err != nil {
		t.Fatal(err)
	}
	settle()
	member, err := cl.CreateENI(ctx, aliyun.NewENI{VSwitchID: "vsw-alisim0001", SecurityGroupIDs: []string{"sg-alisim0001"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.AttachMemberENI(ctx, inst, trunk.ID, member.ID); err != nil {
		t.Fatal(err)
	}
	settle()
	got, err := cl.ENIs(ctx, aliyun.ENIFilter{IDs: []string{member.ID, trunk.ID}})
	if err != nil || len(got) != 2 {
		t.Fatalf("%+v %v", got, err)
	}
	var m, tr aliyun.ENI
	for _, e := range got {
		if e.ID == member.ID {
			m = e
		} else {
			tr = e
		}
	}
	if m.Status != "InUse" || m.VLAN < 1 || m.TrunkID != trunk.ID {
		t.Fatalf("member %+v", m)
	}
	ins := fab.NS[inst]
	if out, err := exec.Command("ip", "-n", ins, "link", "set", fmt.Sprintf("eth%d", tr.DeviceIndex), "up").CombinedOutput(); err != nil {
		t.Fatalf("trunk up: %v %s", err, out)
	}
	trunkMAC, _ := net.ParseMAC(tr.MAC)
	memberMAC, _ := net.ParseMAC(m.MAC)
	podNs, _ := testenv.NewNetns(t)
	p := datapath.ExclusivePod{ContainerID: "0123456789abcdef", Netns: fmt.Sprintf("/proc/self/fd/%d", int(podNs)), IfName: "eth0",
		MAC: memberMAC, IP: m.PrimaryIP, Gateway: netip.MustParseAddr("192.168.0.253"),
		HostRoutes: []netip.Prefix{netip.MustParsePrefix("192.168.0.12/32")}}
	err = nsutil.DoNamed(ins, func() error {
		if _, err := datapath.EnsureMemberLink(datapath.MemberLink{TrunkMAC: trunkMAC, MAC: memberMAC, VLAN: m.VLAN, Kind: datapath.MemberMACVLAN}); err != nil {
			return err
		}
		_, err := datapath.AddExclusive(p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	ping := func() bool {
		return nsutil.Do(podNs, func() error { return exec.Command("ping", "-c", "1", "-W", "2", "192.168.0.10").Run() }) == nil
	}
	if !ping() {
		t.Fatalf("the pod on member %s (%s) does not reach i-alisim0001", m.ID, m.PrimaryIP)
	}
	if err := nsutil.DoNamed(ins, func() error {
		if err := datapath.DelExclusive(p); err != nil {
			return err
		}
		return datapath.DeleteMemberLink(memberMAC)
	}); err != nil {
		t.Fatal(err)
	}
	if err := cl.DetachMemberENI(ctx, inst, trunk.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	settle()
	if out, _ := exec.Command("ip", "-n", fab.Router, "route", "show", m.PrimaryIP.String()+"/32", "proto", "99").CombinedOutput(); len(out) != 0 {
		t.Fatalf("the VPC still routes the detached member's address: %s", out)
	}
}
