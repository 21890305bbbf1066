package sim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func (r *rig) adminPost(path, body string) (int, map[string]any) {
	r.t.Helper()
	cl := &http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Post(r.http.URL+path, "application/json", bytes.NewBufferString(body))
	if err != nil {
		r.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// The drills through the admin API: a vSwitch filled and released, an ENI's address unassigned and the ENI
// detached behind the node's back; bad bodies and unknown objects are refused, naming what was expected.
func TestAdminDrills(t *testing.T) {
	r := newRig(t)
	if code, body := r.adminPost("/admin/vswitch/fill", `{"vSwitchId":"vsw-alisim0001","leave":3}`); code != 200 || body["reserved"] != float64(256-4-2-3) {
		t.Fatalf("fill: %d %v", code, body)
	}
	code, body := r.call("CreateNetworkInterface", map[string]string{"VSwitchId": "vsw-alisim0001", "SecurityGroupIds.1": "sg-alisim0001",
		"SecondaryPrivateIpAddressCount": "3"})
	if code != 403 || body["Code"] != "InvalidVSwitchId.IpNotEnough" {
		t.Fatalf("create needing 4 of 3: %d %v", code, body)
	}
	if code, body := r.adminPost("/admin/vswitch/release", `{"vSwitchId":"vsw-alisim0001","count":-1}`); code != 200 || body["released"] != float64(256-4-2-3) {
		t.Fatalf("release: %d %v", code, body)
	}
	code, body = r.call("CreateNetworkInterface", map[string]string{"VSwitchId": "vsw-alisim0001", "SecurityGroupIds.1": "sg-alisim0001",
		"SecondaryPrivateIpAddressCount": "3"})
	if code != 200 {
		t.Fatalf("create after the release: %d %v", code, body)
	}
	id := body["NetworkInterfaceId"].(string)
	sec := body["PrivateIpSets"].(map[string]any)["PrivateIpSet"].([]any)[1].(map[string]any)["PrivateIpAddress"].(string)
	if code, body := r.adminPost("/admin/eni/detach", `{"networkInterfaceId":"`+id+`"}`); code != 409 {
		t.Fatalf("console detach of an Available ENI: %d %v", code, body)
	}
	if code, _ := r.call("AttachNetworkInterface", map[string]string{"NetworkInterfaceId": id, "InstanceId": "i-alisim0001"}); code != 200 {
		t.Fatal("attach")
	}
	if code, body := r.adminPost("/admin/eni/unassign", `{"networkInterfaceId":"`+id+`","addresses":["`+sec+`"]}`); code != 200 {
		t.Fatalf("console unassign: %d %v", code, body)
	}
	if code, body := r.adminPost("/admin/eni/detach", `{"networkInterfaceId":"`+id+`"}`); code != 200 {
		t.Fatalf("console detach: %d %v", code, body)
	}
	e, ok := r.world.ENI(id)
	if !ok || e.Status != "Available" || e.InstanceID != "" || len(e.Secondary) != 2 {
		t.Fatalf("after the drills: %+v", e)
	}
	for path, body := range map[string]string{"/admin/vswitch/fill": `{"vSwitchId":"vsw-nope","leave":0}`,
		"/admin/eni/detach": `{"networkInterfaceId":"eni-nope"}`, "/admin/eni/unassign": `{"networkInterfaceId":"` + id + `"}`} {
		if code, _ := r.adminPost(path, body); code < 400 {
			t.Errorf("%s %s: %d", path, body, code)
		}
	}
}

// What the SDK could send wrong to the ENI actions is refused as the service does, naming the parameter; a
// security group given twice, or through the older single SecurityGroupId, is one group.
func TestENIParameters(t *testing.T) {
	r := newRig(t)
	base := map[string]string{"VSwitchId": "vsw-alisim0001", "SecurityGroupIds.1": "sg-alisim0001"}
	with := func(extra map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range base {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	long := strings.Repeat("t", 65)
	for _, c := range []struct {
		action string
		p      map[string]string
		code   string
	}{
		{"CreateNetworkInterface", with(map[string]string{"ClientToken": long}), "InvalidParameter"},
		{"CreateNetworkInterface", with(map[string]string{"InstanceType": "Primary"}), "InvalidParameter"},
		{"CreateNetworkInterface", with(map[string]string{"SecondaryPrivateIpAddressCount": "50"}), "InvalidParameter"},
		{"CreateNetworkInterface", map[string]string{"VSwitchId": "vsw-alisim0001"}, "MissingParameter"},
		{"CreateNetworkInterface", with(map[string]string{"SecurityGroupIds.1": "sg-nope"}), "InvalidSecurityGroupId.NotFound"},
		{"DescribeNetworkInterfaces", map[string]string{"MaxResults": "501"}, "InvalidParameter"},
		{"DescribeNetworkInterfaces", map[string]string{"MaxResults": "0"}, "InvalidParameter"},
		{"DescribeNetworkInterfaces", map[string]string{"NextToken": "not-a-token!"}, "InvalidNextToken"},
		{"DetachNetworkInterface", map[string]string{"NetworkInterfaceId": "eni-palisim0001", "InstanceId": "i-alisim0001"},
			"InvalidOperation.DetachPrimaryEniNotAllowed"},
	} {
		code, body := r.call(c.action, c.p)
		if code < 400 || body["Code"] != c.code {
			t.Errorf("%s %v: %d %v, want %s", c.action, c.p, code, body, c.code)
		}
	}
	code, body := r.call("CreateNetworkInterface", with(map[string]string{"SecurityGroupIds.2": "sg-alisim0001", "SecurityGroupId": "sg-alisim0002"}))
	if code != 200 {
		t.Fatalf("%d %v", code, body)
	}
	sgs := body["SecurityGroupIds"].(map[string]any)["SecurityGroupId"].([]any)
	if len(sgs) != 2 || sgs[0] != "sg-alisim0001" || sgs[1] != "sg-alisim0002" {
		t.Fatalf("security groups %v", sgs)
	}
	// Paging: MaxResults 1 walks every ENI (the three primaries and the new one) once, by NextToken.
	seen, token := map[string]bool{}, ""
	for page := 0; ; page++ {
		p := map[string]string{"MaxResults": "1"}
		if token != "" {
			p["NextToken"] = token
		}
		code, body := r.call("DescribeNetworkInterfaces", p)
		if code != 200 || page > 10 {
			t.Fatalf("page %d: %d %v", page, code, body)
		}
		for _, x := range body["NetworkInterfaceSets"].(map[string]any)["NetworkInterfaceSet"].([]any) {
			id := x.(map[string]any)["NetworkInterfaceId"].(string)
			if seen[id] {
				t.Fatalf("%s twice", id)
			}
			seen[id] = true
		}
		if body["TotalCount"] != float64(4) {
			t.Fatalf("TotalCount %v", body["TotalCount"])
		}
		if token, _ = body["NextToken"].(string); token == "" {
			break
		}
	}
	if len(seen) != 4 {
		t.Fatalf("paged through %v", seen)
	}
}
