package sim

import (
	"bytes"
	"encoding/json"
	"net/http"
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
