package sim

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFaultValidation(t *testing.T) {
	s := NewServer(NewWorld(DefaultState(), nil, ""))
	bad := map[string]Fault{
		"empty code":      {Errors: map[string]float64{"": 0.5}},
		"blank code":      {After: map[string]float64{" ": 0.5}},
		"rate above 1":    {Errors: map[string]float64{"Throttling": 1.5}},
		"negative rate":   {After: map[string]float64{"InternalError": -0.1}},
		"NaN rate":        {After: map[string]float64{"InternalError": math.NaN()}},
		"negative delay":  {Latency: -time.Millisecond},
		"negative count":  {Errors: map[string]float64{"Throttling": 0.1}, Count: -1},
		"code with space": {Errors: map[string]float64{"Internal Error": 0.1}},
	}
	for name, f := range bad {
		if err := s.SetFault("CreateRouteEntry", f); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := s.SetFault("", Fault{Errors: map[string]float64{"Throttling": 0.1}}); err == nil {
		t.Error("empty action accepted")
	}
	if len(s.faults) != 0 {
		t.Fatalf("refused faults were set: %v", s.faults)
	}
	if err := s.SetFault("*", Fault{Errors: map[string]float64{"Throttling": 0.1}, After: map[string]float64{Reset: 1, "InternalError": 0}}); err != nil {
		t.Fatalf("valid fault: %v", err)
	}

	r := newRig(t)
	post := func(body string) int {
		resp, err := http.Post(r.http.URL+"/admin/fault", "application/json", bytes.NewBufferString(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, body := range []string{`{"action":"A","errors":{"":0.5}}`, `{"action":"A","latency":"-5ms"}`, `{"action":"A","after":{"reset":2}}`,
		`{"action":"A","afer":{"reset":1}}`, `{"errors":{"Throttling":1}}`, `{"action":"A","count":-1}`} {
		if code := post(body); code != 400 {
			t.Errorf("admin fault %s: %d, want 400", body, code)
		}
	}
	if code := post(`{"action":"A","errors":{"Throttling":0.2},"after":{"InternalError":0.1,"reset":0.1},"latency":"1ms","count":3}`); code != 200 {
		t.Errorf("valid admin fault: %d", code)
	}
}

// A topology is checked before it is served; each defect is named.
func TestTopologyValidation(t *testing.T) {
	if err := DefaultState().Validate(); err != nil {
		t.Fatalf("default world: %v", err)
	}
	cases := map[string]func(*State){
		"vpcs[0].cidr":                    func(st *State) { st.VPCs[0].CIDR = "192.168.0.0/33" },
		"vSwitches[0].cidr":               func(st *State) { st.VSwitches[0].CIDR = "300.1.1.0/24" },
		"vSwitches[1].cidr":               func(st *State) { st.VSwitches[1].CIDR = "10.0.0.0/24" }, // outside the VPC
		"vSwitches[0].ipv6Cidr":           func(st *State) { st.VSwitches[0].IPv6CIDR = "nope" },
		"routeTables[0].entries[0].dst":   func(st *State) { st.RouteTables[0].Entries[0].Dst = "192.168.0.1/24" },
		"entries[1].nextHopType":          func(st *State) { st.RouteTables[0].Entries[1].NextHopType = "Bogus" },
		"routeTables[0].vpcId":            func(st *State) { st.RouteTables[0].VPCID = "vpc-nope" },
		"routeTables[0].quota":            func(st *State) { st.RouteTables[0].Quota = -1 },
		"instances[0].vSwitchId":          func(st *State) { st.Instances[0].VSwitchID = "vsw-nope" },
		"instances[1].primaryIp":          func(st *State) { st.Instances[1].PrimaryIP = "192.168.0.999" },
		"instances[2].mac":                func(st *State) { st.Instances[2].MAC = "zz" },
		"instances[0].id":                 func(st *State) { st.Instances[0].ID = "x" },
		`id "vsw-alisim0001" is also`:     func(st *State) { st.VSwitches[1].ID = "vsw-alisim0001" },
		"accessKeys[0]":                   func(st *State) { st.AccessKeys[0].Secret = "" },
		"regionId":                        func(st *State) { st.RegionID = "" },
		"timing":                          func(st *State) { st.Timing.WriteGap = -time.Second },
		"vSwitches[0].routeTableId":       func(st *State) { st.VSwitches[0].RouteTableID = "vtb-nope" },
		"routeTables[0].entries[2].type":  func(st *State) { st.RouteTables[0].Entries[2].Type = "Other" },
		"instances[0].primaryIp: 192.168": func(st *State) { st.Instances[0].PrimaryIP = "192.168.1.50" }, // other vSwitch
	}
	dir := t.TempDir()
	for want, mod := range cases {
		st := DefaultState()
		mod(st)
		b, _ := json.Marshal(st)
		path := filepath.Join(dir, "topology.json")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadState(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: LoadState: %v", want, err)
		}
	}
}
