package aliyuntest

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/weftnet/weft/cloud/aliyun"
)

// ENIAPI is the ENI surface under contract (*aliyun.Client implements it): what the eni backend calls.
type ENIAPI interface {
	InstanceTypes(ctx context.Context, ids ...string) ([]aliyun.InstanceType, error)
	VSwitches(ctx context.Context, vpcID string) ([]aliyun.VSwitch, error)
	CreateENI(ctx context.Context, n aliyun.NewENI) (aliyun.ENI, error)
	AttachENI(ctx context.Context, instanceID, eniID string) error
	DetachENI(ctx context.Context, instanceID, eniID string) error
	DeleteENI(ctx context.Context, eniID string) error
	ENIs(ctx context.Context, f aliyun.ENIFilter) ([]aliyun.ENI, error)
	AssignIPs(ctx context.Context, eniID string, n int) ([]netip.Addr, error)
	UnassignIPs(ctx context.Context, eniID string, ips []netip.Addr) error
}

// ENIEnv is one fresh world for the ENI contract: a running instance with no secondary ENI, its type, a
// vSwitch of its zone with room and its VPC, a security group of that VPC, and controls.
type ENIEnv struct {
	API                       ENIAPI
	Instance, InstanceType    string
	VPC, VSwitch              string
	OtherZoneVSwitch          string // a vSwitch of the VPC in another zone ("": skip that check)
	SecurityGroup             string
	Transition                time.Duration // how long Attaching / Detaching / Deleting last
	Advance                   func(time.Duration)
	ConsoleDetach             func(eniID string)              // detach behind the node's back
	FillVSwitch               func(vswitch string, leave int) // leave only that many free addresses
	ForeignSecurityGroup      string                          // a group of another VPC ("": skip that check)
	ForeignSecurityGroupError string                          // the code creating with it gets
}

// RunENIContract runs the suite; newEnv builds a fresh world per subtest.
func RunENIContract(t *testing.T, newEnv func(t *testing.T) ENIEnv) {
	ctx := context.Background()
	create := func(t *testing.T, e ENIEnv, n aliyun.NewENI) aliyun.ENI {
		t.Helper()
		if n.VSwitchID == "" {
			n.VSwitchID = e.VSwitch
		}
		if n.SecurityGroupIDs == nil {
			n.SecurityGroupIDs = []string{e.SecurityGroup}
		}
		x, err := e.API.CreateENI(ctx, n)
		if err != nil {
			t.Fatalf("create %+v: %v", n, err)
		}
		return x
	}
	one := func(t *testing.T, e ENIEnv, id string) aliyun.ENI {
		t.Helper()
		got, err := e.API.ENIs(ctx, aliyun.ENIFilter{IDs: []string{id}})
		if err != nil || len(got) != 1 {
			t.Fatalf("ENI %s: %+v %v", id, got, err)
		}
		return got[0]
	}
	ids := func(list []aliyun.ENI) []string {
		var out []string
		for _, x := range list {
			out = append(out, x.ID)
		}
		sort.Strings(out)
		return out
	}
	sorted := func(s ...string) []string { sort.Strings(s); return s }
	limits := func(t *testing.T, e ENIEnv) aliyun.InstanceType {
		t.Helper()
		ts, err := e.API.InstanceTypes(ctx, e.InstanceType)
		if err != nil || len(ts) != 1 {
			t.Fatalf("instance type %s: %+v %v", e.InstanceType, ts, err)
		}
		return ts[0]
	}
	attach := func(t *testing.T, e ENIEnv, id string) {
		t.Helper()
		if err := e.API.AttachENI(ctx, e.Instance, id); err != nil {
			t.Fatalf("attach %s: %v", id, err)
		}
		e.Advance(e.Transition)
	}

	t.Run("an ENI records its groups, vSwitch, type and creation time; a ClientToken makes create idempotent", func(t *testing.T) {
		e := newEnv(t)
		n := aliyun.NewENI{SecondaryIPs: 2, ClientToken: "weft-contract-token-1", Tags: map[string]string{"weft.io/node": "n1"}}
		a := create(t, e, n)
		b := create(t, e, n) // a retry after a restart, with the persisted token
		if a.ID == "" || b.ID != a.ID || len(b.Secondary) != 2 || b.MAC != a.MAC {
			t.Fatalf("create twice with one token: %+v then %+v", a, b)
		}
		if !slices.Equal(a.SecurityGroupIDs, []string{e.SecurityGroup}) {
			t.Fatalf("create answer's security groups %v", a.SecurityGroupIDs)
		}
		got := one(t, e, a.ID)
		if got.Status != "Available" || got.Type != "Secondary" || got.VSwitchID != e.VSwitch || got.InstanceID != "" ||
			got.DeviceIndex != 0 || !slices.Equal(got.SecurityGroupIDs, []string{e.SecurityGroup}) || got.CreationTime.IsZero() ||
			got.Tags["weft.io/node"] != "n1" || len(got.Secondary) != 2 || !got.PrimaryIP.IsValid() {
			t.Fatalf("described %+v", got)
		}
		if all, _ := e.API.ENIs(ctx, aliyun.ENIFilter{Tags: map[string]string{"weft.io/node": "n1"}}); len(all) != 1 {
			t.Fatalf("a token reused made %d ENIs", len(all))
		}
		other := create(t, e, aliyun.NewENI{})
		if other.ID == a.ID {
			t.Fatal("two creates without a token gave one ENI")
		}
	})

	t.Run("security groups: unknown, too many, another VPC's are refused; so is attaching across zones", func(t *testing.T) {
		e := newEnv(t)
		_, err := e.API.CreateENI(ctx, aliyun.NewENI{VSwitchID: e.VSwitch, SecurityGroupIDs: []string{"sg-doesnotexist"}})
		if aliyun.Code(err) != "InvalidSecurityGroupId.NotFound" {
			t.Fatalf("unknown group: %v", err)
		}
		var many []string
		for i := range 11 {
			many = append(many, fmt.Sprintf("sg-contract%02d", i))
		}
		if _, err := e.API.CreateENI(ctx, aliyun.NewENI{VSwitchID: e.VSwitch, SecurityGroupIDs: many}); err == nil {
			t.Fatal("11 security groups accepted")
		}
		if e.OtherZoneVSwitch != "" {
			x := create(t, e, aliyun.NewENI{VSwitchID: e.OtherZoneVSwitch})
			if err := e.API.AttachENI(ctx, e.Instance, x.ID); aliyun.Code(err) != "InvalidOperation.AvailabilityZoneMismatch" {
				t.Fatalf("attach an ENI of another zone: %v", err)
			}
			if err := e.API.DeleteENI(ctx, x.ID); err != nil {
				t.Fatal(err)
			}
			e.Advance(e.Transition)
		}
		if e.ForeignSecurityGroup != "" {
			_, err := e.API.CreateENI(ctx, aliyun.NewENI{VSwitchID: e.VSwitch, SecurityGroupIDs: []string{e.ForeignSecurityGroup}})
			if aliyun.Code(err) != e.ForeignSecurityGroupError {
				t.Fatalf("another VPC's group: %v, want %s", err, e.ForeignSecurityGroupError)
			}
		}
		if left, _ := e.API.ENIs(ctx, aliyun.ENIFilter{VSwitchID: e.VSwitch, Type: "Secondary"}); len(left) != 0 {
			t.Fatalf("refused creates left ENIs: %v", ids(left))
		}
	})

	t.Run("filters combine with AND; attachment shows instance and device index", func(t *testing.T) {
		e := newEnv(t)
		a := create(t, e, aliyun.NewENI{Tags: map[string]string{"k": "1", "role": "x"}})
		b := create(t, e, aliyun.NewENI{Tags: map[string]string{"k": "1"}})
		c := create(t, e, aliyun.NewENI{Tags: map[string]string{"k": "2", "role": "x"}})
		if err := e.API.AttachENI(ctx, e.Instance, a.ID); err != nil {
			t.Fatal(err)
		}
		if got := one(t, e, a.ID); got.Status != "Attaching" || got.InstanceID != e.Instance {
			t.Fatalf("right after attach: %+v", got)
		}
		e.Advance(e.Transition)
		for _, c := range []struct {
			name string
			f    aliyun.ENIFilter
			want []string
		}{
			{"two tags", aliyun.ENIFilter{Tags: map[string]string{"k": "1", "role": "x"}}, []string{a.ID}},
			{"one tag", aliyun.ENIFilter{Tags: map[string]string{"k": "1"}}, sorted(a.ID, b.ID)},
			{"tag and status", aliyun.ENIFilter{Tags: map[string]string{"role": "x"}, Status: "Available"}, []string{c.ID}},
			{"status InUse", aliyun.ENIFilter{Status: "InUse", VSwitchID: e.VSwitch, Type: "Secondary"}, []string{a.ID}},
			{"instance, secondary", aliyun.ENIFilter{InstanceID: e.Instance, Type: "Secondary"}, []string{a.ID}},
			{"type and vSwitch", aliyun.ENIFilter{Type: "Secondary", VSwitchID: e.VSwitch}, sorted(a.ID, b.ID, c.ID)},
			{"type Trunk", aliyun.ENIFilter{Type: "Trunk", VSwitchID: e.VSwitch}, nil},
			{"ids and tag", aliyun.ENIFilter{IDs: []string{a.ID, c.ID}, Tags: map[string]string{"k": "1"}}, []string{a.ID}},
			{"no match", aliyun.ENIFilter{Tags: map[string]string{"k": "3"}}, nil},
		} {
			got, err := e.API.ENIs(ctx, c.f)
			if err != nil || !slices.Equal(ids(got), c.want) {
				t.Errorf("%s: %v %v, want %v", c.name, ids(got), err, c.want)
			}
		}
		got := one(t, e, a.ID)
		if got.Status != "InUse" || got.InstanceID != e.Instance || got.DeviceIndex < 1 {
			t.Fatalf("attached: %+v", got)
		}
		// InstanceId alone lists the primary ENI too: device 0, type Primary, InUse.
		on, err := e.API.ENIs(ctx, aliyun.ENIFilter{InstanceID: e.Instance})
		if err != nil || len(on) != 2 {
			t.Fatalf("ENIs of the instance: %+v %v", on, err)
		}
		for _, x := range on {
			if x.ID == a.ID {
				continue
			}
			if x.Type != "Primary" || x.Status != "InUse" || x.DeviceIndex != 0 || !x.PrimaryIP.IsValid() || x.MAC == "" {
				t.Fatalf("the primary ENI: %+v", x)
			}
			if err := e.API.DetachENI(ctx, e.Instance, x.ID); aliyun.Code(err) != "InvalidOperation.DetachPrimaryEniNotAllowed" {
				t.Fatalf("detach the primary ENI: %v", err)
			}
		}
	})

	t.Run("paging: every page is read, each ENI once; MaxResults above 500 is refused", func(t *testing.T) {
		e := newEnv(t)
		var want []string
		for range 5 {
			want = append(want, create(t, e, aliyun.NewENI{Tags: map[string]string{"page": "y"}}).ID)
		}
		sort.Strings(want)
		for _, size := range []int{1, 2, 500, 0} {
			got, err := e.API.ENIs(ctx, aliyun.ENIFilter{Tags: map[string]string{"page": "y"}, MaxResults: size})
			if err != nil || !slices.Equal(ids(got), want) {
				t.Errorf("page size %d: %v %v, want %v", size, ids(got), err, want)
			}
		}
		if _, err := e.API.ENIs(ctx, aliyun.ENIFilter{MaxResults: 501}); aliyun.Code(err) != "InvalidParameter" {
			t.Errorf("MaxResults 501: %v", err)
		}
	})

	t.Run("per-type limits: addresses per ENI at create, attach and assign; ENIs per instance", func(t *testing.T) {
		e := newEnv(t)
		ty := limits(t, e)
		full := create(t, e, aliyun.NewENI{SecondaryIPs: ty.IPv4PerENI - 1})
		attach(t, e, full.ID)
		if _, err := e.API.AssignIPs(ctx, full.ID, 1); aliyun.Code(err) != "InvalidOperation.Ipv4CountExceeded" {
			t.Fatalf("assign beyond %d addresses: %v", ty.IPv4PerENI, err)
		}
		over := create(t, e, aliyun.NewENI{SecondaryIPs: ty.IPv4PerENI}) // fine unattached: another type may take it
		if err := e.API.AttachENI(ctx, e.Instance, over.ID); aliyun.Code(err) != "InvalidOperation.Ipv4CountExceeded" {
			t.Fatalf("attach an ENI of %d addresses to a %s (%d per ENI): %v", ty.IPv4PerENI+1, ty.ID, ty.IPv4PerENI, err)
		}
		for i := 2; i < ty.ENIs; i++ {
			attach(t, e, create(t, e, aliyun.NewENI{}).ID)
		}
		extra := create(t, e, aliyun.NewENI{})
		err := e.API.AttachENI(ctx, e.Instance, extra.ID)
		if !aliyun.IsENILimit(err) {
			t.Fatalf("ENI %d on a %s (%d with the primary): %v", ty.ENIs, ty.ID, ty.ENIs, err)
		}
		if on, _ := e.API.ENIs(ctx, aliyun.ENIFilter{InstanceID: e.Instance, Type: "Secondary"}); len(on) != ty.ENIs-1 {
			t.Fatalf("%d ENIs on the instance, want %d", len(on), ty.ENIs-1)
		}
	})

	t.Run("an exhausted vSwitch refuses create and assign with IpNotEnough, and recovers", func(t *testing.T) {
		e := newEnv(t)
		x := create(t, e, aliyun.NewENI{})
		e.FillVSwitch(e.VSwitch, 2)
		_, err := e.API.CreateENI(ctx, aliyun.NewENI{VSwitchID: e.VSwitch, SecurityGroupIDs: []string{e.SecurityGroup}, SecondaryIPs: 2})
		if !aliyun.IsVSwitchExhausted(err) || aliyun.Code(err) != "InvalidVSwitchId.IpNotEnough" {
			t.Fatalf("create needing 3 of 2 free addresses: %v", err)
		}
		if _, err := e.API.AssignIPs(ctx, x.ID, 3); !aliyun.IsVSwitchExhausted(err) {
			t.Fatalf("assign 3 of 2 free addresses: %v", err)
		}
		if got, err := e.API.AssignIPs(ctx, x.ID, 2); err != nil || len(got) != 2 {
			t.Fatalf("assign the last 2: %v %v", got, err)
		}
		sws, err := e.API.VSwitches(ctx, e.VPC)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sws {
			if s.ID == e.VSwitch && s.Available != 0 {
				t.Fatalf("AvailableIpAddressCount %d after the last addresses went", s.Available)
			}
		}
		if _, err := e.API.AssignIPs(ctx, x.ID, 1); !aliyun.IsVSwitchExhausted(err) {
			t.Fatalf("assign on a full vSwitch: %v", err)
		}
		got := one(t, e, x.ID)
		if err := e.API.UnassignIPs(ctx, x.ID, got.Secondary[:1]); err != nil {
			t.Fatal(err)
		}
		if _, err := e.API.AssignIPs(ctx, x.ID, 1); err != nil {
			t.Fatalf("assign after one address came back: %v", err)
		}
	})

	t.Run("an ENI detached behind the node's back reads Available with no attachment", func(t *testing.T) {
		e := newEnv(t)
		x := create(t, e, aliyun.NewENI{SecondaryIPs: 1})
		attach(t, e, x.ID)
		e.ConsoleDetach(x.ID)
		if got := one(t, e, x.ID); got.Status != "Detaching" {
			t.Fatalf("right after the console's detach: %+v", got)
		}
		e.Advance(e.Transition)
		got := one(t, e, x.ID)
		if got.Status != "Available" || got.InstanceID != "" || got.DeviceIndex != 0 || len(got.Secondary) != 1 {
			t.Fatalf("after the console's detach: %+v", got)
		}
		if on, _ := e.API.ENIs(ctx, aliyun.ENIFilter{InstanceID: e.Instance, Type: "Secondary"}); len(on) != 0 {
			t.Fatalf("still listed on the instance: %v", ids(on))
		}
		if err := e.API.DetachENI(ctx, e.Instance, x.ID); aliyun.Code(err) != "InvalidOperation.InvalidEniState" {
			t.Fatalf("the node's own detach of a detached ENI: %v", err)
		}
		if err := e.API.DeleteENI(ctx, x.ID); err != nil {
			t.Fatal(err)
		}
	})
}
