package aliyun_test

import (
	"context"
	"testing"
	"time"

	"github.com/weftnet/weft/cloud/aliyun"
	"github.com/weftnet/weft/cloud/aliyun/sim"
)

// A trunk ENI and member ENIs through the SDK against alisim over HTTP: the member's VLAN and trunk id come back
// from DescribeNetworkInterfaces, and the service's refusals reach the caller as codes.
func TestTrunkMemberENIs(t *testing.T) {
	f := newFixture(t, sim.DefaultTiming, nil)
	cl := ecsClient(t, f)
	ctx := context.Background()
	const inst = "i-alisim0003" // ecs.g7.2xlarge: EniQuantity 4, EniTotalQuantity 15
	mk := func(trunk bool) aliyun.ENI {
		t.Helper()
		e, err := cl.CreateENI(ctx, aliyun.NewENI{VSwitchID: "vsw-alisim0001", SecurityGroupIDs: []string{"sg-alisim0001"}, Trunk: trunk})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	trunk := mk(true)
	if trunk.Type != "Trunk" {
		t.Fatalf("created %+v", trunk)
	}
	member := mk(false)
	if err := cl.AttachMemberENI(ctx, inst, trunk.ID, member.ID); aliyun.Code(err) != "InvalidOperation.InvalidTrunkState" {
		t.Fatalf("member of a trunk not yet attached: %v", err)
	}
	if err := cl.AttachENI(ctx, inst, trunk.ID); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Second)
	var members []aliyun.ENI
	for i := 0; i < 11; i++ {
		m := member
		if i > 0 {
			m = mk(false)
		}
		if err := cl.AttachMemberENI(ctx, inst, trunk.ID, m.ID); err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
		members = append(members, m)
	}
	if err := cl.AttachMemberENI(ctx, inst, trunk.ID, mk(false).ID); aliyun.Code(err) != "MemberEniPerInstanceLimitExceeded" {
		t.Fatalf("twelfth member: %v", err)
	}
	f.clock.Advance(2 * time.Second)
	got, err := cl.ENIs(ctx, aliyun.ENIFilter{InstanceID: inst, Type: "Member", MaxResults: 4}) // paged
	if err != nil || len(got) != 11 {
		t.Fatalf("%d members, %v", len(got), err)
	}
	vlans := map[int]bool{}
	for _, e := range got {
		if e.Status != "InUse" || e.TrunkID != trunk.ID || e.InstanceID != inst || e.VLAN < 1 || e.VLAN > sim.MaxVLAN || vlans[e.VLAN] {
			t.Fatalf("member %+v", e)
		}
		vlans[e.VLAN] = true
	}
	if err := cl.DetachENI(ctx, inst, trunk.ID); aliyun.Code(err) != "InvalidOperation.TrunkHasMembers" {
		t.Fatalf("detach a trunk with members: %v", err)
	}
	for _, m := range members {
		if err := cl.DetachMemberENI(ctx, inst, trunk.ID, m.ID); err != nil {
			t.Fatal(err)
		}
	}
	f.clock.Advance(2 * time.Second)
	got, err = cl.ENIs(ctx, aliyun.ENIFilter{IDs: []string{members[0].ID}})
	if err != nil || len(got) != 1 || got[0].Status != "Available" || got[0].Type != "Secondary" || got[0].TrunkID != "" || got[0].VLAN != 0 {
		t.Fatalf("detached member: %+v %v", got, err)
	}
	if err := cl.DeleteENI(ctx, members[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := cl.DetachMemberENI(ctx, inst, trunk.ID, "eni-gone"); err != nil {
		t.Fatalf("detaching a vanished member: %v", err)
	}

	// ecs.c6.4xlarge (i-alisim0002, the other zone) does not support trunking: the refusal names the type.
	t2, err := cl.CreateENI(ctx, aliyun.NewENI{VSwitchID: "vsw-alisim0002", SecurityGroupIDs: []string{"sg-alisim0001"}, Trunk: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.AttachENI(ctx, "i-alisim0002", t2.ID); aliyun.Code(err) != "InvalidOperation.TrunkNotSupported" {
		t.Fatalf("trunk on ecs.c6.4xlarge: %v", err)
	}
}
