package sim

import (
	"encoding/json"
	"testing"
)

// Faults strike before or after the handler, count themselves per action called, clear themselves after
// Count strikes, and after-faults never strike a refused call.
func TestFaultPointsCountsAndCount(t *testing.T) {
	r := newRig(t)
	if err := r.srv.SetFault("DescribeVpcs", Fault{After: map[string]float64{"InternalError": 1}, Count: 1}); err != nil {
		t.Fatal(err)
	}
	if code, body := r.call("DescribeVpcs", nil); code != 500 || body["Code"] != "InternalError" {
		t.Fatalf("first call: %d %v", code, body)
	}
	if code, body := r.call("DescribeVpcs", nil); code != 200 {
		t.Fatalf("after Count strikes the fault must be gone: %d %v", code, body)
	}
	if err := r.srv.SetFault("*", Fault{Errors: map[string]float64{Reset: 1}, Count: 1}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.try("DescribeVSwitches", nil); err == nil {
		t.Fatal("a reset before the call answered")
	}
	if err := r.srv.SetFault("CreateRouteEntry", Fault{After: map[string]float64{"InternalError": 1}}); err != nil {
		t.Fatal(err)
	}
	if code, body := r.call("CreateRouteEntry", map[string]string{"RouteTableId": "vtb-nope", "DestinationCidrBlock": "10.244.1.0/24",
		"NextHopId": "i-alisim0001"}); code != 404 {
		t.Fatalf("refused create: %d %v", code, body)
	}
	got := r.srv.Injected()
	if got["DescribeVpcs"].After["InternalError"] != 1 || got["DescribeVpcs"].Total() != 1 ||
		got["DescribeVSwitches"].Before[Reset] != 1 || got["CreateRouteEntry"].Total() != 0 {
		t.Fatalf("counters %+v", got)
	}
	if _, ok := got["*"]; ok {
		t.Fatalf("faults set on * must be counted under the action called: %+v", got)
	}
	var dump struct {
		InjectedFaults map[string]FaultCounts `json:"injectedFaults"`
		VPCs           []*VPC                 `json:"vpcs"`
	}
	if err := json.Unmarshal(r.adminGet("/admin/state"), &dump); err != nil || dump.InjectedFaults["DescribeVSwitches"].Before[Reset] != 1 ||
		len(dump.VPCs) != 1 {
		t.Fatalf("/admin/state: %+v %v", dump, err)
	}
}
