package sim

import (
	"fmt"
	"strings"
	"testing"
)

// newENI creates an ENI of the given InstanceType in vsw-alisim0001 and returns its id.
func (r *rig) newENI(typ string) string {
	r.t.Helper()
	code, body := r.call("CreateNetworkInterface", map[string]string{"VSwitchId": "vsw-alisim0001", "SecurityGroupIds.1": "sg-alisim0001",
		"InstanceType": typ})
	if code != 200 {
		r.t.Fatalf("create %s: %d %v", typ, code, body)
	}
	return body["NetworkInterfaceId"].(string)
}

// want calls action and checks the answer's code ("" for success).
func (r *rig) want(code string, action string, p map[string]string) map[string]any {
	r.t.Helper()
	status, body := r.call(action, p)
	if code == "" && status != 200 || code != "" && body["Code"] != code {
		r.t.Fatalf("%s %v: %d %v, want %q", action, p, status, body, code)
	}
	return body
}

func (r *rig) enis(p map[string]string) []map[string]any {
	r.t.Helper()
	p["MaxResults"] = "100"
	body := r.want("", "DescribeNetworkInterfaces", p)
	var out []map[string]any
	for _, x := range body["NetworkInterfaceSets"].(map[string]any)["NetworkInterfaceSet"].([]any) {
		out = append(out, x.(map[string]any))
	}
	return out
}

func TestTrunkAndMemberENIs(t *testing.T) {
	r := newRig(t)
	// i-alisim0003 is an ecs.g7.2xlarge: EniQuantity 4, EniTotalQuantity 15, so 11 members; i-alisim0002 an
	// ecs.c6.4xlarge, which does not support trunking; i-alisim0001 an ecs.c7.4xlarge in the same zone as 0003.
	const inst = "i-alisim0003"
	trunk := r.newENI("Trunk")
	r.want("", "AttachNetworkInterface", map[string]string{"InstanceId": inst, "NetworkInterfaceId": trunk})
	r.want("InvalidOperation.TrunkExists", "AttachNetworkInterface", map[string]string{"InstanceId": inst, "NetworkInterfaceId": r.newENI("Trunk")})
	other := r.newENI("Trunk")
	r.want("", "AttachNetworkInterface", map[string]string{"InstanceId": "i-alisim0001", "NetworkInterfaceId": other})

	m := r.newENI("Secondary")
	for _, c := range []struct {
		code string
		p    map[string]string
	}{
		{"InvalidTrunkNetworkInstanceId.NotFound", map[string]string{"TrunkNetworkInstanceId": "eni-nope"}},
		{"InvalidTrunkNetworkInstanceId.NotFound", map[string]string{"TrunkNetworkInstanceId": m}},
		{"InvalidOperation.InvalidTrunkState", map[string]string{"TrunkNetworkInstanceId": other}}, // another instance's trunk
		{"InvalidParameter", map[string]string{"TrunkNetworkInstanceId": trunk, "NetworkInterfaceId": r.newENI("Trunk")}},
	} {
		p := map[string]string{"InstanceId": inst, "NetworkInterfaceId": m}
		for k, v := range c.p {
			p[k] = v
		}
		r.want(c.code, "AttachNetworkInterface", p)
	}

	// Eleven members get VLANs 1..11; the twelfth is refused.
	var members []string
	for i := 0; i < 11; i++ {
		id := m
		if i > 0 {
			id = r.newENI("Secondary")
		}
		r.want("", "AttachNetworkInterface", map[string]string{"InstanceId": inst, "NetworkInterfaceId": id, "TrunkNetworkInstanceId": trunk})
		members = append(members, id)
	}
	r.want("MemberEniPerInstanceLimitExceeded", "AttachNetworkInterface", map[string]string{"InstanceId": inst,
		"NetworkInterfaceId": r.newENI("Secondary"), "TrunkNetworkInstanceId": trunk})
	got := r.enis(map[string]string{"InstanceId": inst, "Type": "Member"})
	if len(got) != 11 {
		t.Fatalf("%d members listed: %v", len(got), got)
	}
	vlans := map[float64]bool{}
	for _, e := range got {
		att := e["Attachment"].(map[string]any)
		v := att["DeviceIndex"].(float64)
		if e["Status"] != "InUse" || att["TrunkNetworkInterfaceId"] != trunk || e["InstanceId"] != inst || v < 1 || v > 11 || vlans[v] {
			t.Fatalf("member %v", e)
		}
		vlans[v] = true
	}
	tr := r.enis(map[string]string{"NetworkInterfaceId.1": trunk})[0]
	if ids := tr["Attachment"].(map[string]any)["MemberNetworkInterfaceIds"].(map[string]any)["MemberNetworkInterfaceId"].([]any); tr["Type"] != "Trunk" || len(ids) != 11 {
		t.Fatalf("trunk %v", tr)
	}

	// Members do not count against EniQuantity 4: the primary and the trunk leave room for two more ENIs.
	for i := 0; i < 2; i++ {
		r.want("", "AttachNetworkInterface", map[string]string{"InstanceId": inst, "NetworkInterfaceId": r.newENI("Secondary")})
	}
	r.want("EniPerInstanceLimitExceeded", "AttachNetworkInterface", map[string]string{"InstanceId": inst, "NetworkInterfaceId": r.newENI("Secondary")})
	// Members are no NICs of the instance.
	body := r.want("", "DescribeInstances", map[string]string{"InstanceIds": `["` + inst + `"]`})
	nics := body["Instances"].(map[string]any)["Instance"].([]any)[0].(map[string]any)["NetworkInterfaces"].(map[string]any)["NetworkInterface"].([]any)
	if len(nics) != 4 {
		t.Fatalf("DescribeInstances lists %d NICs, want 4 (primary, trunk, two secondaries): %v", len(nics), nics)
	}

	// Detach: the trunk only without members; a member with its own trunk named (or none), back to Secondary.
	r.want("InvalidOperation.TrunkHasMembers", "DetachNetworkInterface", map[string]string{"InstanceId": inst, "NetworkInterfaceId": trunk})
	r.want("InvalidParameter", "DetachNetworkInterface", map[string]string{"InstanceId": inst, "NetworkInterfaceId": members[0], "TrunkNetworkInstanceId": other})
	freed := vlanOf(t, r, members[0])
	r.want("", "DetachNetworkInterface", map[string]string{"InstanceId": inst, "NetworkInterfaceId": members[0], "TrunkNetworkInstanceId": trunk})
	e := r.enis(map[string]string{"NetworkInterfaceId.1": members[0]})[0]
	if e["Status"] != "Available" || e["Type"] != "Secondary" || e["Attachment"] != nil {
		t.Fatalf("detached member %v", e)
	}
	again := r.newENI("Secondary")
	r.want("", "AttachNetworkInterface", map[string]string{"InstanceId": inst, "NetworkInterfaceId": again, "TrunkNetworkInstanceId": trunk})
	if v := vlanOf(t, r, again); v != freed {
		t.Fatalf("the new member got VLAN %v, want the freed %v", v, freed)
	}
	r.want("", "DeleteNetworkInterface", map[string]string{"NetworkInterfaceId": members[0]})
	for _, id := range append(members[1:], again) {
		r.want("", "DetachNetworkInterface", map[string]string{"InstanceId": inst, "NetworkInterfaceId": id})
	}
	r.want("", "DetachNetworkInterface", map[string]string{"InstanceId": inst, "NetworkInterfaceId": trunk})
	if n := len(r.enis(map[string]string{"Type": "Member"})); n != 0 {
		t.Fatalf("%d members left", n)
	}
}

func vlanOf(t *testing.T, r *rig, id string) float64 {
	t.Helper()
	e := r.enis(map[string]string{"NetworkInterfaceId.1": id})[0]
	return e["Attachment"].(map[string]any)["DeviceIndex"].(float64)
}

func TestTrunkRefusedWhereTheTypeDoesNotSupportIt(t *testing.T) {
	r := newRig(t)
	code, body := r.call("CreateNetworkInterface", map[string]string{"VSwitchId": "vsw-alisim0002", "SecurityGroupIds.1": "sg-alisim0001",
		"InstanceType": "Trunk"})
	if code != 200 {
		t.Fatalf("%d %v", code, body)
	}
	body = r.want("InvalidOperation.TrunkNotSupported", "AttachNetworkInterface", map[string]string{"InstanceId": "i-alisim0002",
		"NetworkInterfaceId": body["NetworkInterfaceId"].(string)})
	if msg := fmt.Sprint(body["Message"]); !strings.Contains(msg, "ecs.c6.4xlarge") {
		t.Fatalf("message %q does not name the instance type", msg)
	}
}

func TestTrunkStateValidation(t *testing.T) {
	mk := func() *State {
		st := DefaultState()
		st.ENIs = []*ENI{
			{ID: "eni-trunk1", VSwitchID: "vsw-alisim0001", Type: "Trunk", PrimaryIP: "192.168.0.100", InstanceID: "i-alisim0003", DeviceIndex: 1, Status: "InUse"},
			{ID: "eni-mem1", VSwitchID: "vsw-alisim0001", Type: "Member", PrimaryIP: "192.168.0.101", InstanceID: "i-alisim0003", TrunkID: "eni-trunk1", DeviceIndex: 7, Status: "InUse"},
		}
		return st
	}
	if err := mk().Validate(); err != nil {
		t.Fatalf("valid trunk state: %v", err)
	}
	for want, mod := range map[string]func(*State){
		"enis[1].trunkId: no trunk":         func(st *State) { st.ENIs[1].TrunkID = "eni-nope" },
		"enis[1].deviceIndex: VLAN id 4095": func(st *State) { st.ENIs[1].DeviceIndex = 4095 },
		"enis[1]: a member (type Member)":   func(st *State) { st.ENIs[1].InstanceID = "i-alisim0001" },
		"enis[1].type: Member without":      func(st *State) { st.ENIs[1].TrunkID = "" },
		"enis[2].deviceIndex: VLAN id 7": func(st *State) {
			c := *st.ENIs[1]
			c.ID, c.PrimaryIP = "eni-mem2", "192.168.0.102"
			st.ENIs = append(st.ENIs, &c)
		},
	} {
		st := mk()
		mod(st)
		if err := st.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", want, err)
		}
	}
}
